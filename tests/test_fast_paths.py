"""Every fast path of the encoder against the straightforward padded implementation.

CPU, fp32: each path within 1e-5 of the padded reference (embeddings L2-normalised).
GPU, bf16 (``-m gpu``, skipped without CUDA): each path within bf16 tolerance of the padded
bf16 reference and of an fp32 reference: max |diff| <= 3e-2 per component and cosine >= 0.999
per embedding. Why that much: bf16 keeps 8 bits of mantissa (relative step 2^-8 = 0.004), and
packed and padded batches run matrix products of different shapes, so their roundings differ
in every layer; 3e-2 is about eight bf16 steps of a unit-norm 64-d vector's largest
components, a cosine of 0.999 an angle of 2.6 degrees.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linq_eval.model.encoder import (
    DecoderEncoder,
    _attention_reference,
    _Packed,
    _packed_attention,
    load_encoder,
)
from linq_eval.bench.lengthmix import length_mix, synthetic_texts
from linq_eval.model.profiles import get_profile
from linq_eval.model.random_models import mistral_tokenizer, random_mistral, smollm2_gguf_path
from linq_eval.model.tokenization import tokenize

CPU_ATOL = 1e-5
BF16_ATOL = 3e-2
BF16_MIN_COSINE = 0.999


@pytest.fixture(scope="module")
def tok():
    return mistral_tokenizer()


@pytest.fixture(scope="module")
def tiny():
    return random_mistral("tiny", seed=0)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    # Long and short texts, a few past max_length, and duplicates.
    mix = synthetic_texts(40, seed=3) + ["", "x", "word " * 300]
    return mix + mix[:5]


def make(model, tok, device="cpu", token_budget=None, **overrides) -> DecoderEncoder:
    profile = get_profile("linq-embed-mistral").with_overrides(
        instructions=None, policy="none", max_length=128, **overrides
    )
    return DecoderEncoder(
        model, tok, profile, device=device, progress=False, token_budget=token_budget
    )


def encode(model, tok, texts, device="cpu", **knobs) -> np.ndarray:
    budget = knobs.pop("token_budget", None)
    overrides = {k: knobs.pop(k) for k in ("padding_side", "pooling") if k in knobs}
    enc = make(model, tok, device=device, token_budget=budget, **overrides)
    for key, value in knobs.items():
        setattr(enc, key, value)
    return enc.encode_texts(texts)


# The reference: padded batches with the model's own attention, a KV cache, nothing fused.
REFERENCE = {"_attention": "padded", "_no_kv_cache": False}

CPU_PATHS = {
    "padded, no KV cache": {"_attention": "padded"},
    "varlen-segments": {"_attention": "varlen-segments"},
    "varlen-padded": {"_attention": "varlen-padded"},
    "automatic": {},
    "fused RMSNorm": {"_elementwise": "fused"},
    "small token budget": {"token_budget": 160},
}


@pytest.mark.parametrize("path", list(CPU_PATHS))
def test_fast_path_matches_padded_reference(tok, tiny, texts, path):
    ref = encode(tiny, tok, texts, **REFERENCE)
    got = encode(tiny, tok, texts, **CPU_PATHS[path])
    np.testing.assert_allclose(got, ref, atol=CPU_ATOL)


@pytest.mark.parametrize("side", ["left", "right"])
def test_packed_ignores_padding_side(tok, tiny, texts, side):
    ref = encode(tiny, tok, texts, padding_side=side, **REFERENCE)
    got = encode(tiny, tok, texts, padding_side=side, _attention="varlen-segments")
    np.testing.assert_allclose(got, ref, atol=CPU_ATOL)


def test_packed_mean_pooling(tok, tiny, texts):
    ref = encode(tiny, tok, texts, pooling="mean", **REFERENCE)
    got = encode(tiny, tok, texts, pooling="mean", _attention="varlen-segments")
    np.testing.assert_allclose(got, ref, atol=CPU_ATOL)


@pytest.mark.slow
def test_compiled_elementwise(tok, tiny, texts):
    # torch.compile on CPU builds C++ kernels: tens of seconds, hence slow.
    ref = encode(tiny, tok, texts, **REFERENCE)
    got = encode(tiny, tok, texts, _elementwise="compiled")
    np.testing.assert_allclose(got, ref, atol=CPU_ATOL)


def test_tokenization_overlapped(tok, tiny, texts):
    enc = make(tiny, tok)
    unique = list(dict.fromkeys(texts))
    ids = tokenize(tok, unique, enc.special, 128).ids
    want = enc._embed_ids(ids, progress=False, label="t")
    got = enc._encode_overlapped(unique, chunk=7)
    np.testing.assert_allclose(got, want, atol=CPU_ATOL)


def test_automatic_choice_on_cpu(tok, tiny):
    enc = make(tiny, tok)
    assert enc._attention_mode() == "varlen-segments"
    settings = enc._speed_settings()
    assert settings["kv_cache"] is False and settings["attention"] == "varlen-segments"


def test_a_failing_kernel_is_skipped(tok, tiny, monkeypatch):
    from linq_eval.model import encoder

    monkeypatch.setattr(encoder, "_packed_kernels", lambda device, dtype: ["bogus", "segments"])
    enc = make(tiny, tok)
    assert enc._attention_mode() == "varlen-segments"
    assert "bogus" in enc._attention_note


def test_wrong_attention_is_caught(tok, tiny, monkeypatch):
    # A kernel that ignores causality must fail the self-check, leaving the padded path.
    from linq_eval.model import encoder

    real = encoder._packed_attention

    def acausal(module, *args, **kwargs):
        return real(encoder._AttentionProbe(False), *args, **kwargs)

    monkeypatch.setattr(encoder, "_packed_attention", acausal)
    monkeypatch.setattr(encoder, "_packed_kernels", lambda device, dtype: ["segments"])
    enc = make(tiny, tok)
    assert enc._attention_mode() == "padded"
    assert "differs" in enc._attention_note


def test_a_model_that_ignores_the_packing_is_caught(tok, tiny, monkeypatch):
    # If the attention implementation were not switched, packed inputs would attend to each
    # other through the model's own SDPA: the encoder must notice and stay padded.
    import contextlib

    from linq_eval.model import encoder

    monkeypatch.setattr(encoder, "_attention_implementation", lambda m, n: contextlib.nullcontext())
    enc = make(tiny, tok)
    assert enc._attention_mode() == "padded"
    assert "did not route attention" in enc._attention_note


def test_unknown_mode_is_an_error(tok, tiny):
    enc = make(tiny, tok)
    enc._attention = "varlen-magic"
    with pytest.raises(ValueError, match="varlen-segments"):
        enc.encode_texts(["a"])


def test_packed_batches_count_real_tokens(tok, tiny):
    enc = make(tiny, tok, token_budget=128)
    ids = [[1] * n for n in (100, 60, 50, 20, 10, 5)]
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    enc._attention = "varlen-segments"
    packed = list(enc._batches(order, ids))
    assert all(sum(len(ids[i]) for i in b) <= 128 for b in packed)
    assert packed == [[0], [1, 2], [3, 4, 5]]
    enc._attention = "padded"
    padded = list(enc._batches(order, ids))
    assert all(max(len(ids[i]) for i in b) * len(b) <= 128 for b in padded)
    assert padded == [[0], [1, 2], [3, 4, 5]]


@pytest.mark.parametrize("kernel", ["segments", "padded"])
@pytest.mark.parametrize("heads", [(4, 4), (4, 2), (8, 1)])
def test_attention_kernels(kernel, heads):
    q_heads, kv_heads = heads
    lens = [5, 1, 9, 3]
    bounds = np.cumsum([0, *lens])
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(1, q_heads, bounds[-1], 16, generator=gen)
    k, v = (torch.randn(1, kv_heads, bounds[-1], 16, generator=gen) for _ in range(2))
    positions = np.concatenate([np.arange(n) for n in lens])
    index = torch.from_numpy(np.repeat(np.arange(len(lens)) * max(lens), lens) + positions)
    packed = _Packed(
        kernel, torch.tensor(bounds, dtype=torch.int32), bounds.tolist(), max(lens), index
    )
    for causal in (True, False):
        module = type("M", (), {"is_causal": causal})()
        if kernel == "padded" and not causal:
            with pytest.raises(RuntimeError, match="causal"):
                _packed_attention(module, q, k, v, None, scaling=0.25, linq_packed=packed)
            continue
        got = _packed_attention(module, q, k, v, None, scaling=0.25, linq_packed=packed)[0]
        want = _attention_reference(q, k, v, packed, causal, 0.25)
        torch.testing.assert_close(got[0], want, atol=1e-5, rtol=1e-5)


def test_smollm2_packed_matches_padded():
    # A real trained decoder (Llama architecture, 135M) from its GGUF file.
    enc = load_encoder(
        str(smollm2_gguf_path()), policy="none", instructions=None, progress=False, max_length=128
    )
    texts = length_mix("synthetic", 24, seed=5) + ["The cat sat on the mat.", ""]
    assert enc._attention_mode() == "varlen-segments"
    got = enc.encode_texts(texts)
    enc._attention = "padded"
    want = enc.encode_texts(texts)
    np.testing.assert_allclose(got, want, atol=1e-4)


# ---------------------------------------------------------------------------- GPU (bf16)

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _close_bf16(got: np.ndarray, want: np.ndarray) -> None:
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert np.abs(got - want).max() <= BF16_ATOL, np.abs(got - want).max()
    assert cos.min() >= BF16_MIN_COSINE, cos.min()


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize(
    "knobs",
    [
        {"_attention": "padded"},
        {"_attention": "varlen-flash"},
        {"_attention": "varlen-flash-rkv"},
        {"_attention": "varlen-padded"},
        {"_attention": "varlen-segments"},
        {},
        {"_elementwise": "fused"},
        {"_elementwise": "compiled"},
        {"_pinned": False},
    ],
    ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "automatic",
)
def test_gpu_fast_path_bf16(tok, texts, knobs):
    model = random_mistral("tiny", seed=0, dtype=torch.bfloat16, device="cuda")
    ref_bf16 = encode(model, tok, texts, device="cuda", **REFERENCE)
    ref_fp32 = encode(random_mistral("tiny", seed=0), tok, texts, **REFERENCE)
    got = encode(model, tok, texts, device="cuda", **knobs)
    _close_bf16(got, ref_bf16)
    _close_bf16(got, ref_fp32)


@pytest.mark.gpu
@gpu
def test_gpu_automatic_choice_and_budget(tok):
    model = random_mistral("tiny", seed=0, dtype=torch.bfloat16, device="cuda")
    enc = make(model, tok, device="cuda")
    assert enc._attention_mode().startswith("varlen-flash"), enc._attention_note
    budget = enc._fit_token_budget(limit=16384)
    assert 128 <= budget <= 16384
