"""The encoder against an independent implementation of the model card's recipe.

Tiny randomly initialised MistralModel with Mistral-7B's real tokenizer (from mistral-common),
and SmolLM2-135M (a real trained decoder, from its GGUF file), on CPU in fp32.
"""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import SCIFACT, make_encoder, shared

from linq_eval.errors import ConfigError, EncodingError
from linq_eval.model.loading import load_encoder
from linq_eval.model.packed_attention import Packed
from linq_eval.model.random_models import (
    MISTRAL_TOKENIZER_SHA256,
    mistral_tokenizer,
    mistral_tokenizer_file,
)
from linq_eval.model.tokenization import tokenize


def scifact_texts(n: int) -> list[str]:
    with open(shared(SCIFACT) / "corpus.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["text"] for _, line in zip(range(n), f, strict=False)]


def reference_embed(model, tok, texts, max_length=512, padding_side="right"):
    """The card's recipe written out plainly: BOS + text (truncated) + EOS, last real token."""
    enc = tok(texts, max_length=max_length - 1, truncation=True, add_special_tokens=True)
    ids = [x + [tok.eos_token_id] for x in enc["input_ids"]]
    width = max(map(len, ids))
    input_ids = torch.full((len(ids), width), tok.eos_token_id)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        if padding_side == "left":
            input_ids[i, width - len(x) :] = torch.tensor(x)
            mask[i, width - len(x) :] = 1
        else:
            input_ids[i, : len(x)] = torch.tensor(x)
            mask[i, : len(x)] = 1
    with torch.no_grad():
        if padding_side == "left":
            pos = (mask.cumsum(1) - 1).clamp(min=0)
            h = model(input_ids=input_ids, attention_mask=mask, position_ids=pos).last_hidden_state
            out = h[:, -1]
        else:
            h = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
            out = h[torch.arange(len(ids)), mask.sum(1) - 1]
    return F.normalize(out.float(), dim=-1).numpy()


# ---------------------------------------------------------------- tokenizer


def test_tokenizer_file_is_mistral_7b_v01(tok):
    import hashlib

    digest = hashlib.sha256(mistral_tokenizer_file().read_bytes()).hexdigest()
    assert digest == MISTRAL_TOKENIZER_SHA256


def test_tokenizer_matches_sentencepiece(tok):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(mistral_tokenizer_file()))
    assert tok("Hello world", add_special_tokens=False)["input_ids"] == [22557, 1526]
    texts = scifact_texts(200) + [
        "Instruct: Given a claim, find documents\nQuery: a  b   c",
        "최초의 원자력 발전소는 무엇인가?",
        "emoji 🤖 and\ttabs",
        " leading space",
    ]
    for text in texts:
        assert tok(text, add_special_tokens=False)["input_ids"] == sp.encode(text), text


def test_tokenizer_alone_does_not_append_eos(tok):
    # The transformers-5 behaviour that breaks last-token pooling if nobody adds EOS.
    ids = tok("Hello world")["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] != tok.eos_token_id


def test_bos_and_eos_survive_truncation(tok, tiny):
    enc = make_encoder(tiny, tok, max_length=16, instructions=None, policy="none")
    long_text = "word " * 500
    batch = tokenize(tok, [long_text, "short"], enc.special, 16)
    assert batch.n_truncated == 1
    assert len(batch.ids[0]) == 16
    for ids in batch.ids:
        assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
        assert tok.eos_token_id not in ids[1:-1]


def test_tokenizer_without_eos_fails_loudly(tok, tiny):
    no_eos = mistral_tokenizer()
    no_eos.eos_token = None
    with pytest.raises(ConfigError, match="no EOS token"):
        make_encoder(tiny, no_eos, instructions=None, policy="none")


# ---------------------------------------------------------------- embeddings


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_matches_reference_recipe(tok, tiny, padding_side):
    texts = scifact_texts(12) + ["", "x", "Who invented Hangul?"]
    enc = make_encoder(
        tiny, tok, padding_side=padding_side, instructions=None, policy="none", max_length=64
    )
    ours = enc.encode_texts(texts)
    for side in ("right", "left"):
        ref = reference_embed(tiny, tok, texts, max_length=64, padding_side=side)
        np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_order_and_batch_invariance(tok, tiny):
    texts = scifact_texts(30)
    enc_small = make_encoder(
        tiny, tok, instructions=None, policy="none", max_length=128, token_budget=256
    )
    enc_big = make_encoder(
        tiny, tok, instructions=None, policy="none", max_length=128, token_budget=100_000
    )
    base = enc_big.encode_texts(texts)
    perm = list(range(len(texts)))
    random.Random(1).shuffle(perm)
    shuffled = enc_small.encode_texts([texts[i] for i in perm])
    np.testing.assert_allclose(shuffled, base[perm], atol=1e-5)
    alone = np.stack([enc_small.encode_texts([t])[0] for t in texts[:5]])
    np.testing.assert_allclose(alone, base[:5], atol=1e-5)


def test_duplicates_encoded_once(tok, tiny):
    enc = make_encoder(tiny, tok, instructions=None, policy="none")
    out = enc.encode_texts(["a", "b", "a", "a"])
    assert enc.stats.unique_texts == 2 and enc.stats.texts == 4
    np.testing.assert_array_equal(out[0], out[2])


def test_none_text_names_task_split_and_row(tok, tiny):
    enc = make_encoder(tiny, tok, instructions=None, policy="none")
    meta = SimpleNamespace(name="SciFact", type="Retrieval")
    with pytest.raises(EncodingError, match=r"SciFact.*split test.*row 2"):
        enc.encode(
            [{"text": ["a", "b"]}, {"text": [None]}],
            task_metadata=meta,
            hf_split="test",
            hf_subset="default",
            prompt_type="document",
        )


def test_nan_embedding_is_an_error(tok, tiny):
    enc = make_encoder(tiny, tok, instructions=None, policy="none")

    def poisoned(module, args, output):
        output.last_hidden_state[:, -1] = np.nan  # the last token of the batch's last input

    handle = tiny.register_forward_hook(poisoned)
    try:
        with pytest.raises(EncodingError, match="NaN or inf"):
            enc.encode_texts(["a fine text", "another"])
    finally:
        handle.remove()


def test_out_of_memory_halves_the_batch(tok, tiny):
    texts = scifact_texts(16)
    enc = make_encoder(tiny, tok, instructions=None, policy="none", max_length=64)
    expected = enc.encode_texts(texts)

    def out_of_memory_above(rows: int):
        def hook(module, args, kwargs):
            packed: Packed | None = kwargs.get("linq_packed")
            inputs = len(packed.bounds) - 1 if packed else kwargs["input_ids"].shape[0]
            if inputs > rows:
                raise torch.OutOfMemoryError("injected")

        return tiny.register_forward_pre_hook(hook, with_kwargs=True)

    handle = out_of_memory_above(3)
    try:
        got = enc.encode_texts(texts)
    finally:
        handle.remove()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert enc.stats.oom_retries > 0
    assert enc.token_budget < 8192

    handle = out_of_memory_above(0)
    try:
        with pytest.raises(EncodingError, match="single input"):
            enc.encode_texts(["x"])
    finally:
        handle.remove()


def test_settings_are_validated(tok, tiny):
    with pytest.raises(ConfigError, match="below"):
        make_encoder(tiny, tok, max_length=4, instructions=None, policy="none")
    with pytest.raises(ConfigError, match="exceeds"):
        make_encoder(tiny, tok, max_length=100_000, instructions=None, policy="none")
    with pytest.raises(ConfigError, match="token_budget"):
        make_encoder(tiny, tok, token_budget=100, instructions=None, policy="none")


def test_local_path_without_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="no weights"):
        load_encoder(str(tmp_path))


def test_mistyped_profile_suggests(tmp_path):
    with pytest.raises(KeyError, match="linq-embed-mistral"):
        load_encoder("linq-embed-mistal")


# ---------------------------------------------------------------- a real decoder


def test_smollm2_matches_reference(smollm2):
    texts = scifact_texts(6) + ["The cat sat on the mat.", ""]
    ours = smollm2.encode_texts(texts)
    ref = reference_embed(smollm2.model, smollm2.tokenizer, texts, max_length=128)
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    assert smollm2.settings()["special_tokens"]["suffix"] == [smollm2.tokenizer.eos_token_id]


def test_smollm2_embeddings_carry_meaning(smollm2):
    a, b, c = smollm2.encode_texts(
        ["The cat sat on the mat.", "A cat is sitting on a mat.", "Stock markets fell today."]
    )
    assert a @ b > a @ c and a @ b > b @ c


def test_the_token_budget_is_fitted_on_cuda_only_when_none_is_given(monkeypatch):
    from linq_eval.model import random_models
    from linq_eval.model.encoder import DecoderEncoder
    from linq_eval.model.speed import budget_to_fit

    assert budget_to_fit(None, "cuda") and budget_to_fit(None, torch.device("cuda", 1))
    assert not budget_to_fit(4096, "cuda") and not budget_to_fit(None, "cpu")
    # random_encoder asks the same question as load_encoder (here answered yes on CPU)
    fitted: list[int | None] = []
    monkeypatch.setattr(DecoderEncoder, "fit_token_budget", lambda self: fitted.append(1))
    monkeypatch.setattr(random_models, "budget_to_fit", lambda budget, dev: budget is None)
    random_models.random_encoder("tiny", device="cpu", progress=False)
    assert fitted == [1]
    random_models.random_encoder("tiny", device="cpu", progress=False, token_budget=4096)
    assert fitted == [1]
