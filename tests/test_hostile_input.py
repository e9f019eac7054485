"""Bad input gets a clear error or a defined, recorded behaviour: one test per case.

Texts go through the real encoder (a tiny random Mistral with Mistral-7B's tokenizer, CPU);
names, settings and conflicting options through the library and the ``linq-eval`` CLI; models
through small configs saved to tmp_path (nothing is downloaded).

Run: HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 python -m pytest tests/test_hostile_input.py -q
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from cli_helpers import run_cli
from conftest import make_encoder as linq_encoder

from linq_eval.benchmarks import task_names
from linq_eval.errors import ConfigError, EncodingError, UnknownNameError
from linq_eval.model.encoder import DecoderEncoder, EncodeStats
from linq_eval.model.loading import load_encoder
from linq_eval.model.meta import check_poolable
from linq_eval.model.random_models import mistral_tokenizer
from linq_eval.profiles import get_profile, profile_for_model
from linq_eval.prompts.instruction_sets import load_instruction_set
from linq_eval.prompts.policies import get_policy

MAX_LENGTH = 64
SCIFACT = SimpleNamespace(name="SciFact", type="Retrieval")
SCIFACT_PROMPT = load_instruction_set("e5").prefix("SciFact")


def make_encoder(model, tok, **overrides) -> DecoderEncoder:
    """Linq-Embed-Mistral's profile (e5 policy and instructions) over the tiny model, at
    MAX_LENGTH unless given."""
    overrides.setdefault("max_length", MAX_LENGTH)
    return linq_encoder(model, tok, **overrides)


@pytest.fixture(scope="module")
def shared_encoder(tiny, tok) -> DecoderEncoder:
    encoder = make_encoder(tiny, tok)
    encoder.encode_texts(["warm up"])  # chooses the attention mode (probes the model)
    return encoder


@pytest.fixture
def enc(shared_encoder) -> DecoderEncoder:
    """The module's encoder with its counters zeroed."""
    shared_encoder.stats = EncodeStats()
    return shared_encoder


@contextlib.contextmanager
def model_inputs(model) -> Iterator[list[list[int]]]:
    """Every row of token ids the model's embedding layer receives within the block."""
    rows: list[list[int]] = []

    def spy(module, args):
        rows.extend(args[0].tolist())

    handle = model.embed_tokens.register_forward_pre_hook(spy)
    try:
        yield rows
    finally:
        handle.remove()


def seen_by_model(enc: DecoderEncoder, text: str, prefix: str = "") -> list[int]:
    """The exact ids the model receives for one text (one text: no padding, no packing)."""
    with model_inputs(enc.model) as rows:
        enc.encode_texts([text], prefix=prefix)
    assert len(rows) == 1
    return rows[0]


def encode_query(enc: DecoderEncoder, texts: list) -> np.ndarray:
    """SciFact queries through mteb's protocol (so with SciFact's instruction prompt)."""
    return enc.encode(
        [{"text": texts}],
        task_metadata=SCIFACT,
        hf_split="test",
        hf_subset="default",
        prompt_type="query",
    )


def plain_ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


# =========================================================================== texts


def test_empty_text_is_the_prompt_plus_eos(enc, tok):
    bos, eos = tok.bos_token_id, tok.eos_token_id
    assert seen_by_model(enc, "") == [bos, eos]
    assert seen_by_model(enc, "", prefix=SCIFACT_PROMPT) == [
        bos,
        *plain_ids(tok, SCIFACT_PROMPT),
        eos,
    ]
    out = encode_query(enc, ["", "a claim"])
    assert np.isfinite(out).all()
    assert enc.stats.empty == 3


def test_whitespace_only_text_is_embedded_as_empty(enc, tok):
    blank = ["   ", "\t\n", "\u3000", " \r\n "]
    want = seen_by_model(enc, "", prefix=SCIFACT_PROMPT)
    for text in blank:
        assert seen_by_model(enc, text, prefix=SCIFACT_PROMPT) == want, repr(text)
    enc.stats = EncodeStats()
    out = encode_query(enc, ["", *blank, "not blank"])
    np.testing.assert_array_equal(out[1:5], np.repeat(out[:1], 4, axis=0))
    assert not np.allclose(out[0], out[5])
    assert enc.stats.empty == 5
    assert enc.stats.unique_texts == 2  # all blanks are one input


@pytest.mark.parametrize("bad", [None, 5, b"bytes", float("nan"), ["a list"]])
def test_non_string_text_names_task_split_and_row(enc, bad):
    meta = SimpleNamespace(name="STSBenchmark", type="STS")
    with pytest.raises(EncodingError) as info:
        enc.encode(
            [{"text": ["a", "b"]}, {"text": ["c", bad]}],
            task_metadata=meta,
            hf_split="validation",
            hf_subset="default",
        )
    message = str(info.value)
    assert "task STSBenchmark" in message and "split validation" in message
    assert "row 3:" in message and f"got {type(bad).__name__}" in message


def test_million_character_text_is_truncated_with_bos_and_eos(enc, tok):
    text = "word " * 200_000
    assert len(text) == 1_000_000
    ids = seen_by_model(enc, text)
    assert len(ids) == MAX_LENGTH
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert ids[1:-1] == plain_ids(tok, "word " * 100)[: MAX_LENGTH - 2]
    assert enc.stats.truncated == 1


def test_control_characters_are_kept_as_text(enc, tok):
    text = "a\x00b\x07c\x1b[0m d\x7f\x0b\x0ce\r\n"
    ids = seen_by_model(enc, text)
    assert ids[1:-1] == plain_ids(tok, text)
    assert tok.decode(ids[1:-1]) == text  # nothing dropped, NUL does not end the text
    a, b = enc.encode_texts([text, "a"])
    assert np.isfinite(a).all() and not np.allclose(a, b)


def test_lone_surrogates_are_repaired_and_counted(enc, tok):
    bad = ["bad \ud800 text", "\udfff", "pair \ud83d\ude00 and lone \udc00"]
    repaired = [t.replace("\ud800", "\ufffd").replace("\udfff", "\ufffd") for t in bad[:2]]
    repaired.append("pair \ufffd\ufffd and lone \ufffd")  # surrogates never pair up in a str
    for text, fixed in zip(bad, repaired, strict=True):
        assert seen_by_model(enc, text) == seen_by_model(enc, fixed)
    enc.stats = EncodeStats()
    np.testing.assert_array_equal(enc.encode_texts(bad), enc.encode_texts(repaired))
    assert enc.stats.repaired == 3


RTL_AND_CJK = [
    "مرحبا بالعالم، ما هي أول محطة نووية؟",  # Arabic
    "שלום עולם, מהי תחנת הכוח הגרעינית הראשונה?",  # Hebrew
    "最初の原子力発電所は何ですか",  # Japanese
    "第一座核电站是什么？",  # Chinese
    "최초의 원자력 발전소는 무엇인가?",  # Korean
    "mixed \u202eRTL override\u202c and \u200f marks",  # bidi control characters
]


def test_right_to_left_and_cjk_text_round_trip_and_embed_stably(enc, tok):
    for text in RTL_AND_CJK:
        ids = seen_by_model(enc, text)
        assert ids[1:-1] == plain_ids(tok, text)
        assert tok.decode(ids[1:-1]) == text
    together = enc.encode_texts(RTL_AND_CJK + ["some English text"])
    alone = np.stack([enc.encode_texts([t])[0] for t in RTL_AND_CJK])
    assert np.isfinite(together).all()
    np.testing.assert_allclose(together[:-1], alone, atol=1e-5)
    np.testing.assert_array_equal(enc.encode_texts(RTL_AND_CJK), enc.encode_texts(RTL_AND_CJK))


def test_text_longer_than_max_length_keeps_prompt_bos_and_eos(enc, tok):
    text = "The claim is long. " * 40
    ids = seen_by_model(enc, text, prefix=SCIFACT_PROMPT)
    full = plain_ids(tok, SCIFACT_PROMPT + text)
    assert len(full) > MAX_LENGTH
    assert ids == [tok.bos_token_id, *full[: MAX_LENGTH - 2], tok.eos_token_id]
    prompt = plain_ids(tok, SCIFACT_PROMPT)[:-1]  # its trailing space merges into the text
    assert ids[1 : 1 + len(prompt)] == prompt
    enc.stats = EncodeStats()
    encode_query(enc, [text, "short", text])
    assert enc.stats.truncated == 1  # one unique text was cut


def test_empty_list_of_texts(enc):
    out = enc.encode_texts([])
    assert out.shape == (0, enc.model.config.hidden_size) and out.dtype == np.float32


# =========================================================================== names


@pytest.mark.parametrize(
    ("lookup", "bad", "closest"),
    [
        (lambda n: task_names(tasks=[n]), "SciFac", "SciFact"),
        (task_names, "MTEB(eng,v1)", "MTEB(eng, v1)"),
        (profile_for_model, "linq-embed-mistal", "linq-embed-mistral"),
        (get_policy, "e55", "e5"),
        (load_instruction_set, "e6", "e5"),
    ],
    ids=["task", "benchmark", "profile", "policy", "instruction set"],
)
def test_unknown_name_suggests_the_closest(lookup, bad, closest):
    with pytest.raises(UnknownNameError) as info:
        lookup(bad)
    assert info.value.suggestions[0] == closest
    assert f"Did you mean: {closest!r}" in str(info.value)


@pytest.mark.parametrize(
    ("args", "closest"),
    [
        (["instructions", "--tasks", "SciFac"], "SciFact"),
        (["instructions", "--benchmark", "MTEB(eng,v1)"], "MTEB(eng, v1)"),
        (["instructions", "--policy", "e55"], "e5"),
        (["instructions", "--instructions", "e6"], "e5"),
        (["plan", "--model", "linq-embed-mistal", "--tasks", "SciFact"], "linq-embed-mistral"),
    ],
    ids=["task", "benchmark", "policy", "instruction set", "profile"],
)
def test_unknown_name_on_the_command_line(monkeypatch, capsys, args, closest):
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2
    assert err.startswith("error: Unknown ") and f"Did you mean: {closest!r}" in err
    assert "Traceback" not in err and not out


# =========================================================================== models


def test_local_path_without_weights(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_encoder(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="no config.json"):
        load_encoder(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"no weights \(\*.safetensors"):
        load_encoder(str(tmp_path))


def test_unknown_hub_model_offline_is_a_clear_error():
    with pytest.raises(ConfigError, match="Cannot load the model 'no-such-org/no-such-model'"):
        load_encoder("no-such-org/no-such-model")


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory) -> Path:
    """A tiny encoder-decoder (T5) with random weights, saved like a downloaded model."""
    from transformers import T5Config, T5Model

    config = T5Config(
        vocab_size=128, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2
    )
    folder = tmp_path_factory.mktemp("t5")
    T5Model(config).save_pretrained(folder)
    return folder


def test_encoder_decoder_is_refused_before_weights_are_read(t5_dir, monkeypatch):
    import transformers

    def never(*args, **kwargs):
        raise AssertionError("the weights or the tokenizer were loaded")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", never)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", never)
    with pytest.raises(ConfigError, match=r"encoder-decoder \(t5\)"):
        load_encoder(str(t5_dir), policy="none")


def test_encoder_decoder_model_object_is_refused(t5_dir, tok):
    from transformers import T5Model

    model = T5Model.from_pretrained(t5_dir)
    with pytest.raises(ConfigError, match="encoder-decoder"):
        make_encoder(model, tok, policy="none", instructions=None)


def test_model_without_token_ids_is_refused(tiny, tok):
    from transformers import ViTConfig, ViTModel

    vit = ViTModel(
        ViTConfig(
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            image_size=8,
            patch_size=4,
        )
    )
    with pytest.raises(ConfigError, match=r"does not take token ids \(input_ids\)"):
        make_encoder(vit, tok, policy="none", instructions=None)
    check_poolable(tiny.config, tiny)  # a decoder passes, also behind a generic wrapper
    check_poolable(tiny.config, Wrapped(tiny))  # (as torch.compile's OptimizedModule)


class Wrapped(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *args, **kwargs):
        return self.inner(*args, **kwargs)


def test_tokenizer_without_eos(tiny):
    no_eos = mistral_tokenizer()
    no_eos.eos_token = None
    with pytest.raises(ConfigError, match="has no EOS token.*must be EOS"):
        make_encoder(tiny, no_eos)


@pytest.mark.parametrize("poison", [float("nan"), float("inf")])
def test_nan_or_inf_embedding_names_task_split_and_row(enc, tok, poison):
    """A model that produces NaN/inf (here: one token's input embedding poisoned)."""
    marker = plain_ids(tok, "the poison pill")[-1]

    def poisoned(module, args, output):
        output = output.clone()
        output[args[0] == marker] = poison
        return output

    handle = enc.model.embed_tokens.register_forward_hook(poisoned)
    try:
        ok = encode_query(enc, ["a fine claim", "another claim"])
        assert np.isfinite(ok).all()
        with pytest.raises(EncodingError) as info:
            encode_query(enc, ["a fine claim", "another", "a fine claim", "the poison pill", "x"])
    finally:
        handle.remove()
    assert str(info.value) == (
        "task SciFact, subset default, split test, row 3: the embedding contains NaN or inf"
    )


# =========================================================================== settings


def test_max_length_below_8_or_above_the_model_limit(tiny, tok, monkeypatch, capsys, tmp_path):
    with pytest.raises(ConfigError, match="max_length=7 is below 8"):
        get_profile("linq-embed-mistral").with_overrides(max_length=7)
    with pytest.raises(ConfigError, match="exceeds the model's limit of 32768"):
        get_profile("linq-embed-mistral").with_overrides(max_length=32769)
    # The model's own limit (the tiny Mistral has 4096 positions), when lower than the profile's.
    with pytest.raises(ConfigError, match="exceeds the model's limit of 4096"):
        make_encoder(tiny, tok, max_length=8192)
    for value, message in (("100000", "exceeds the model's limit"), ("4", "is below 8")):
        code, _, err = run_cli(
            monkeypatch,
            capsys,
            "plan",
            "--tasks",
            "SciFact",
            "--max-length",
            value,
            "--output",
            str(tmp_path),
        )
        assert code == 2 and message in err, err


def test_token_budget_below_the_longest_input(tiny, tok, monkeypatch, capsys, tmp_path):
    with pytest.raises(ConfigError, match="token_budget=63 is smaller than max_length=64"):
        make_encoder(tiny, tok, token_budget=63)
    make_encoder(tiny, tok, token_budget=64)  # one longest input per batch is enough
    # No budget given: the device's default, or max_length when that is longer.
    from linq_eval.defaults import DEFAULT_TOKEN_BUDGET

    cpu = DEFAULT_TOKEN_BUDGET["cpu"]
    assert make_encoder(tiny, tok, max_length=cpu // 4).token_budget == cpu
    assert make_encoder(tiny, tok, max_length=cpu * 2).token_budget == cpu * 2
    # On the command line the profile's max_length (512) counts when --max-length is not given.
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "run",
        "--dry-run",
        "--tasks",
        "SciFact",
        "--token-budget",
        "100",
        "--output",
        str(tmp_path),
    )
    assert code == 2 and "--token-budget 100 is below max_length 512" in err


def test_prompt_longer_than_max_length_is_an_error(tiny, tok):
    enc = make_encoder(tiny, tok, max_length=8)
    with pytest.raises(ConfigError, match=r"task SciFact.*prompt takes \d+ tokens.*max_length=8"):
        encode_query(enc, ["a claim"])
    assert enc.stats.texts == 0


def test_conflicting_options_are_listed_together(monkeypatch, capsys, tmp_path):
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "plan",
        "--benchmark",
        "MTEB(eng, v1)",
        "--tasks",
        "SciFact",
        "--task-types",
        "STS",
        "--random-init",
        "huge",
        "--revision",
        "abc",
        "--output",
        str(tmp_path),
    )
    assert code == 2 and not out
    assert "Conflicting or invalid options" in err
    for part in ("--task-types selects task types", "valid sizes are", "--revision"):
        assert part in err, part


def test_bad_shard_on_the_command_line(monkeypatch, capsys, tmp_path):
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "plan",
        "--shard",
        "3/2",
        "--tasks",
        "SciFact",
        "--output",
        str(tmp_path),
    )
    assert code == 2 and not out
    assert "--shard 3/2" in err and "between 1 and 2" in err


# =========================================================================== files


def write_scifact(data_dir: Path, corpus: bytes) -> Path:
    folder = data_dir / "scifact"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_bytes(corpus)
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "what purrs"}\n')
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    return folder


def load_scifact(data_dir: Path):
    import mteb

    from linq_eval.run.local_data import load_local_task

    task = mteb.get_task("SciFact")
    assert load_local_task(task, data_dir)
    return task


def test_bad_data_file_names_file_and_line(tmp_path):
    from linq_eval.errors import DataError

    folder = write_scifact(tmp_path, b'{"_id": "d1", "text": "ok"}\n{"_id": "d2", "text": oops}\n')
    with pytest.raises(DataError, match=f"{folder / 'corpus.jsonl'}:2: not valid JSON"):
        load_scifact(tmp_path)


def test_data_file_not_utf8_names_file_and_line(tmp_path):
    from linq_eval.errors import DataError

    corpus = '{"_id": "d1", "text": "ok"}\n{"_id": "d2", "text": "café"}\n'.encode("latin-1")
    folder = write_scifact(tmp_path, corpus)
    with pytest.raises(DataError) as info:
        load_scifact(tmp_path)
    assert str(info.value) == (
        f"{folder / 'corpus.jsonl'}:2: not UTF-8 (byte 0xe9 at column 27); save it as UTF-8"
    )


def test_data_file_with_a_lone_surrogate_escape(tmp_path):
    from linq_eval.errors import DataError

    corpus = (
        b'{"_id": "d1", "text": "emoji \\ud83d\\ude00 is a valid pair"}\n'
        b'{"_id": "d2", "text": "lone \\ud800 escape"}\n'
    )
    folder = write_scifact(tmp_path, corpus)
    with pytest.raises(DataError, match=f"{folder / 'corpus.jsonl'}:2: a lone surrogate"):
        load_scifact(tmp_path)
    (folder / "corpus.jsonl").write_bytes(corpus.splitlines(keepends=True)[0])
    assert load_scifact(tmp_path).dataset["default"]["test"]["corpus"][0]["text"] == (
        "emoji \U0001f600 is a valid pair"
    )


def test_data_file_with_a_byte_order_mark_is_read(tmp_path):
    write_scifact(tmp_path, b'\xef\xbb\xbf{"_id": "d1", "text": "Cats purr."}\n')
    corpus = load_scifact(tmp_path).dataset["default"]["test"]["corpus"]
    assert corpus[0]["id"] == "d1" and corpus[0]["text"] == "Cats purr."


def test_malformed_instruction_file_lists_every_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        'name: bad\nversion: 1.0\nsource: "t"\ntemplate: "Instruct: {instruction}\\nQuery: "\n'
        'tasks:\n  SciFacts: "x"\n  STS12: ""\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_instruction_set(bad)
    message = str(info.value)
    assert f"{bad}:2: 'version' must be a string" in message
    assert f"{bad}:6: task 'SciFacts' is not an mteb task; did you mean: 'SciFact'" in message
    assert f"{bad}:7: instruction of 'STS12' is empty" in message
    bad.write_bytes(b'name: bad\nsource: "caf\xe9"\n')
    with pytest.raises(ConfigError, match="Cannot read instruction file"):
        load_instruction_set(bad)
