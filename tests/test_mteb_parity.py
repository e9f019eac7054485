"""Every decoder profile under its ``mteb`` conventions against mteb's own implementation of
the model: ``mteb.get_model_meta(name).load_model(...)`` (its loader and loader_kwargs: template,
passages instructed or not, EOS handling, pooling, normalisation) loads the same tiny random
weights, saved as the model's hub repository in a local hub cache at the pinned revision, and
both encode the same texts for one task of each task type of MTEB(eng, v2), as queries, as
documents and without a prompt type. Float32 on both sides: dtype is a declared setting, checked
against mteb's loader_kwargs separately. Each difference a profile names in
``profile_sources.SOURCES`` is shown here too.
"""

from __future__ import annotations

import mteb
import numpy as np
import pytest
import torch
from tiny_models import (
    hub_snapshot,
    qwen_stand_in_tokenizer,
    save_sentence_transformer,
    tiny_model,
)

from linq_eval.model.loading import load_encoder
from linq_eval.model.profile_sources import SOURCES, UNSUPPORTED
from linq_eval.model.random_models import mistral_tokenizer
from linq_eval.profiles import MTEB_INSTRUCTIONS, PROFILES, Profile
from linq_eval.registry import registry

BENCHMARK = "MTEB(eng, v2)"
TEXTS = [
    "What causes the seasons on Earth?",
    "The tilt of the Earth's axis relative to its orbital plane causes the seasons.",
    "Stock prices fell sharply after the announcement.",
]
ARCHITECTURE = {
    "linq-embed-mistral": "mistral",
    "e5-mistral-7b-instruct": "mistral",
    "sfr-embedding-mistral": "mistral",
    "sfr-embedding-2r": "mistral",
    "gte-qwen2-7b-instruct": "qwen2",
    "qwen3-embedding-0.6b": "qwen3",
    "qwen3-embedding-4b": "qwen3",
    "qwen3-embedding-8b": "qwen3",
}
"""Every decoder profile and the architecture of its model."""
MISTRAL_TOKENIZER_CONFIG = {
    "tokenizer_class": "LlamaTokenizer",
    "add_bos_token": True,
    "add_eos_token": True,
    "pad_token": "</s>",
}
"""The tokenizer_config.json of e5-mistral and the models made from it: add_eos_token set, which
transformers 5 overrides with tokenizer.json's post-processor (only <s>)."""


def _folder(architecture: str, root):
    model = tiny_model(architecture)
    if architecture == "mistral":
        return save_sentence_transformer(
            model, mistral_tokenizer(), root / "mistral", MISTRAL_TOKENIZER_CONFIG
        )
    # Qwen3-Embedding's tokenizer ends every input with <|endoftext|> and pads left;
    # gte-Qwen2's adds nothing (mteb asks for add_eos_token).
    qwen3 = architecture == "qwen3"
    config = {"padding_side": "left"} if qwen3 else {}
    return save_sentence_transformer(
        model, qwen_stand_in_tokenizer(append_eos=qwen3), root / architecture, config
    )


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub cache holding every decoder profile's repository (tiny weights) at its pinned
    revision, and the local folder of each architecture."""
    root = tmp_path_factory.mktemp("parity")
    folders = {a: _folder(a, root) for a in sorted(set(ARCHITECTURE.values()))}
    cache = root / "hub"
    for name, architecture in ARCHITECTURE.items():
        p = PROFILES[name]
        hub_snapshot(cache, p.mteb_name, p.revision, folders[architecture])
    return cache, folders


def task_per_type() -> list:
    """The first task of each task type of MTEB(eng, v2)."""
    chosen: dict[str, object] = {}
    for task in mteb.get_benchmark(BENCHMARK).tasks:
        chosen.setdefault(task.metadata.type, task)
    return list(chosen.values())


def mteb_form(profile: Profile, **overrides) -> Profile:
    """The profile under mteb's conventions (``--policy mteb --instructions mteb-v2``), float32."""
    return profile.with_overrides(
        policy="mteb", instructions=MTEB_INSTRUCTIONS, dtype="float32", **overrides
    )


def prompt_types(task) -> list:
    """The prompt types mteb encodes a task's inputs with: queries and documents (retrieval,
    reranking), each input's own (STS, pair classification: None unless the task sets one),
    else None."""
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.types import PromptType

    if isinstance(task, AbsTaskRetrieval):
        return [PromptType.query, PromptType.document]
    if hasattr(task, "input1_prompt_type"):
        return list(dict.fromkeys([task.input1_prompt_type, task.input2_prompt_type]))
    return [None]


def encode_all(encoder, tasks) -> np.ndarray:
    from datasets import Dataset
    from torch.utils.data import DataLoader

    out = []
    for task in tasks:
        for prompt_type in prompt_types(task):
            loader = DataLoader(Dataset.from_dict({"text": TEXTS}), batch_size=2)
            out.append(
                np.asarray(
                    encoder.encode(
                        loader,
                        task_metadata=task.metadata,
                        hf_split="test",
                        hf_subset="default",
                        prompt_type=prompt_type,
                    ),
                    dtype=np.float32,
                )
            )
    return np.stack(out)


@pytest.fixture(scope="module")
def tasks():
    return task_per_type()


def test_every_task_type_of_the_benchmark_is_covered(tasks):
    types = {t.metadata.type for t in tasks}
    used = {pt for t in tasks for pt in prompt_types(t)}
    assert {"query", "document", None} <= {getattr(pt, "value", pt) for pt in used}
    # every type the benchmark has (seven: Classification ... Summarization), one task each
    assert types == {t.type for t in registry().benchmark(BENCHMARK).tasks}
    assert len(types) == len(tasks) == 7


def test_every_decoder_profile_is_compared_and_documented():
    decoders = {n for n, p in PROFILES.items() if p.pooling == "last"}
    assert decoders == set(ARCHITECTURE)
    assert set(SOURCES) == set(PROFILES)
    for name in decoders:
        assert mteb.get_model_meta(PROFILES[name].mteb_name).revision == PROFILES[name].revision


def test_unsupported_models_are_in_the_published_set_and_have_no_profile():
    profiled = {p.mteb_name for p in PROFILES.values()}
    for name in UNSUPPORTED:
        assert name not in profiled
        mteb.get_model_meta(name)  # a real mteb model


@pytest.mark.parametrize("name", sorted(ARCHITECTURE))
def test_mteb_policy_equals_mtebs_own_implementation(name, hub, tasks):
    cache, folders = hub
    profile = PROFILES[name]
    meta = mteb.get_model_meta(profile.mteb_name)
    theirs_model = meta.load_model(
        device="cpu", cache_folder=str(cache), model_kwargs={"dtype": torch.float32}
    )
    theirs = encode_all(theirs_model, tasks)
    assert np.isfinite(theirs).all()
    folder = str(folders[ARCHITECTURE[name]])
    ours = encode_all(
        load_encoder(
            mteb_form(profile).with_overrides(model=folder, revision=None),
            device="cpu",
            progress=False,
        ),
        tasks,
    )
    differences = SOURCES[name].mteb_differences
    if "eos" in differences:
        # The named difference: mteb's implementation pools the last word, not </s>.
        assert np.abs(ours - theirs).max() > 1e-2
        ours = encode_all(
            load_encoder(
                mteb_form(profile, eos="none").with_overrides(model=folder, revision=None),
                device="cpu",
                progress=False,
            ),
            tasks,
        )
    np.testing.assert_allclose(ours, theirs, atol=2e-6, rtol=0)


def _mteb_dtype(meta) -> str:
    dtype = (meta.loader_kwargs or {}).get("model_kwargs", {}).get("dtype", "auto")
    dtype = str(getattr(dtype, "value", dtype))
    if dtype == "auto":  # the checkpoint's own dtype, which mteb records as output_dtypes
        dtype = str(getattr(meta.output_dtypes, "value", meta.output_dtypes) or "auto")
    return {"bf16": "bfloat16", "fp16": "float16"}.get(dtype, dtype)


@pytest.mark.parametrize("name", sorted(ARCHITECTURE))
def test_dtype_equals_mtebs_unless_named(name):
    profile = PROFILES[name]
    theirs = _mteb_dtype(mteb.get_model_meta(profile.mteb_name))
    ours = profile.dtype_for("cuda")
    named = "dtype" in SOURCES[name].mteb_differences
    assert (ours != theirs) == named, (ours, theirs)
    if named:
        assert f"loads {theirs}" in SOURCES[name].mteb_differences["dtype"]


def test_instructed_prefix_is_mtebs(tasks):
    """The exact prefix of a retrieval query: the profile's template over mteb's prompt."""
    from mteb.types import PromptType

    retrieval = next(t for t in tasks if t.metadata.type == "Retrieval")
    for name in ARCHITECTURE:
        profile = PROFILES[name]
        meta = mteb.get_model_meta(profile.mteb_name)
        template = meta.loader_kwargs.get("instruction_template")
        if template is None:  # Qwen3: the loader function passes its module's template
            from mteb.models.model_implementations.qwen3_models import instruction_template

            template = instruction_template
        prompt = retrieval.metadata.prompt
        prompt = prompt.get("query") if isinstance(prompt, dict) else prompt
        expected = (
            template(prompt, PromptType.query)
            if callable(template)
            else template.format(instruction=prompt)
        )
        encoder_profile = mteb_form(profile)
        from linq_eval.prompts.builder import prompt_for
        from linq_eval.prompts.instruction_sets import load_instruction_set

        got = prompt_for(
            "mteb",
            load_instruction_set(MTEB_INSTRUCTIONS),
            encoder_profile.template,
            retrieval.metadata.name,
            "Retrieval",
            "query",
        )
        assert got == expected, name


@pytest.mark.parametrize(
    "name", ["qwen3-embedding-0.6b", "gte-qwen2-7b-instruct", "sfr-embedding-2r"]
)
def test_new_profile_runs_an_mteb_task_offline(
    name, hub, shared_data, tmp_path, monkeypatch, capsys
):
    """``linq-eval run --model NAME`` loads the tiny weights by hub id at the profile's pinned
    revision from the (offline) hub cache and scores STSBenchmark with the profile's
    conventions, which the run record states."""
    import json

    from cli_helpers import run_here

    cache, _ = hub
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))  # read at import
    profile = PROFILES[name]
    out = tmp_path / "out"
    run_here(
        monkeypatch,
        capsys,
        "run",
        "--model",
        name,
        "--tasks",
        "STSBenchmark",
        "--data-dir",
        str(shared_data),
        "--output",
        str(out),
        "--no-progress",
        "--no-cache",
    )
    folder = out / profile.mteb_name.replace("/", "__") / profile.revision
    record = json.loads((folder / "linq_eval" / "run.json").read_text())
    settings = record["settings"]
    assert settings["profile"] == name
    for key in ("policy", "instructions", "eos", "bos", "padding_side", "pooling"):
        assert settings[key] == getattr(profile, key), key
    assert settings["template"] == (profile.template or "Instruct: {instruction}\nQuery: ")
    expected_prefix = [] if profile.bos == "tokenizer" else [1]
    assert settings["special_tokens"]["prefix"] == expected_prefix
    assert len(settings["special_tokens"]["suffix"]) == 1
    score = record["tasks"]["STSBenchmark"]["main_score"]
    assert -1 < score < 1  # False for NaN too
    assert (folder / "STSBenchmark.json").is_file()


def test_profiles_command_shows_sources_verification_and_unsupported(monkeypatch, capsys):
    import json

    from cli_helpers import run_cli

    code, out, _ = run_cli(monkeypatch, capsys, "profiles")
    assert code == 0
    for name, src in SOURCES.items():
        assert name in out
        assert all(f"source: {s}" in out for s in src.sources)
        assert all(f"differs from mteb ({k}): {v}" in out for k, v in src.mteb_differences.items())
    for name, reason in UNSUPPORTED.items():
        assert f"{name}: {reason}" in out
    code, out, _ = run_cli(monkeypatch, capsys, "profiles", "--format", "json")
    data = json.loads(out)
    assert data["profiles"]["qwen3-embedding-8b"]["template"] == "Instruct: {instruction}\nQuery:"
    assert data["unsupported"] == UNSUPPORTED
