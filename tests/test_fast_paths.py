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

from linq_eval.bench.lengthmix import length_mix, synthetic_texts
from linq_eval.model import packed_attention
from linq_eval.model.encoder import DecoderEncoder, budget_batches
from linq_eval.model.packed_attention import (
    AttentionProbe,
    Packed,
    attention_function,
    attention_reference,
)
from linq_eval.model.random_models import random_mistral
from linq_eval.model.speed import SpeedOptions
from linq_eval.profiles import get_profile

CPU_ATOL = 1e-5
BF16_ATOL = 3e-2
BF16_MIN_COSINE = 0.999


@pytest.fixture(scope="module")
def texts() -> list[str]:
    # Long and short texts, a few past max_length, and duplicates.
    mix = synthetic_texts(40, seed=3) + ["", "x", "word " * 300]
    return mix + mix[:5]


def make(model, tok, device="cpu", speed=None, **overrides) -> DecoderEncoder:
    profile = get_profile("linq-embed-mistral").with_overrides(
        instructions=None, policy="none", max_length=128, **overrides
    )
    return DecoderEncoder(model, tok, profile, device=device, progress=False, speed=speed)


def encode(model, tok, texts, device="cpu", **options) -> np.ndarray:
    """Encode with these SpeedOptions (and padding_side/pooling profile overrides)."""
    overrides = {k: options.pop(k) for k in ("padding_side", "pooling") if k in options}
    enc = make(model, tok, device=device, speed=SpeedOptions(**options), **overrides)
    return enc.encode_texts(texts)


# The reference: padded batches with the model's own attention.
REFERENCE = {"attention": "padded"}

CPU_PATHS = {
    "varlen-segments": {"attention": "varlen-segments"},
    "varlen-padded": {"attention": "varlen-padded"},
    "automatic": {},
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
    got = encode(tiny, tok, texts, padding_side=side, attention="varlen-segments")
    np.testing.assert_allclose(got, ref, atol=CPU_ATOL)


def test_packed_mean_pooling(tok, tiny, texts):
    ref = encode(tiny, tok, texts, pooling="mean", **REFERENCE)
    got = encode(tiny, tok, texts, pooling="mean", attention="varlen-segments")
    np.testing.assert_allclose(got, ref, atol=CPU_ATOL)


@pytest.mark.parametrize("attention", ["padded", "varlen-segments"])
def test_no_kv_cache_is_built(tok, tiny, texts, attention):
    calls = []
    hook = tiny.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(kwargs.get("use_cache")), with_kwargs=True
    )
    try:
        encode(tiny, tok, texts[:3], attention=attention)
    finally:
        hook.remove()
    assert calls and set(calls) == {False}


def test_automatic_choice_on_cpu(tok, tiny):
    enc = make(tiny, tok)
    assert enc.attention_mode() == "varlen-segments"
    settings = enc.speed_settings()
    assert settings["attention"] == "varlen-segments"
    assert enc.settings()["speed"] == settings


def test_a_failing_kernel_is_skipped(tok, tiny, monkeypatch):
    monkeypatch.setattr(
        packed_attention, "packed_kernels", lambda device, dtype: ["bogus", "segments"]
    )
    enc = make(tiny, tok)
    assert enc.attention_mode() == "varlen-segments"
    assert "bogus" in enc.speed_settings()["attention_note"]


def test_wrong_attention_is_caught(tok, tiny, monkeypatch):
    # A kernel that ignores causality must fail the self-check, leaving the padded path.
    real = packed_attention.attention_function

    def acausal(module, *args, **kwargs):
        return real(AttentionProbe(False), *args, **kwargs)

    monkeypatch.setattr(packed_attention, "attention_function", acausal)
    monkeypatch.setattr(packed_attention, "packed_kernels", lambda device, dtype: ["segments"])
    enc = make(tiny, tok)
    assert enc.attention_mode() == "padded"
    assert "differs" in enc.speed_settings()["attention_note"]


def test_a_model_that_ignores_the_packing_is_caught(tok, tiny, monkeypatch):
    # If the attention implementation were not switched, packed inputs would attend to each
    # other through the model's own SDPA: the encoder must notice and stay padded.
    import contextlib

    from linq_eval.model import forward

    monkeypatch.setattr(forward, "attention_switched", lambda c, n: contextlib.nullcontext())
    enc = make(tiny, tok)
    assert enc.attention_mode() == "padded"
    assert "did not route attention" in enc.speed_settings()["attention_note"]


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="varlen-segments"):
        SpeedOptions(attention="varlen-magic")


def test_packed_batches_count_real_tokens():
    ids = [[1] * n for n in (100, 60, 50, 20, 10, 5)]
    lengths = [len(x) for x in ids]
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    packed = list(budget_batches(order, lengths, 128, packed=True))
    assert all(sum(len(ids[i]) for i in b) <= 128 for b in packed)
    assert packed == [[0], [1, 2], [3, 4, 5]]
    padded = list(budget_batches(order, lengths, 128, packed=False))
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
    packed = Packed(
        kernel, torch.tensor(bounds, dtype=torch.int32), bounds.tolist(), max(lens), index
    )
    for causal in (True, False):
        module = type("M", (), {"is_causal": causal})()
        if kernel == "padded" and not causal:
            with pytest.raises(RuntimeError, match="causal"):
                attention_function(module, q, k, v, None, scaling=0.25, linq_packed=packed)
            continue
        got = attention_function(module, q, k, v, None, scaling=0.25, linq_packed=packed)[0]
        want = attention_reference(q, k, v, packed, causal, 0.25)
        torch.testing.assert_close(got[0], want, atol=1e-5, rtol=1e-5)


def test_smollm2_packed_matches_padded(smollm2):
    # A real trained decoder (Llama architecture, 135M) from its GGUF file (conftest).
    enc = smollm2
    texts = length_mix("synthetic", 24, seed=5) + ["The cat sat on the mat.", ""]
    assert enc.attention_mode() == "varlen-segments"
    got = enc.encode_texts(texts)
    want = enc.with_speed(SpeedOptions(attention="padded")).encode_texts(texts)
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
    "options",
    [
        {"attention": "padded"},
        {"attention": "varlen-flash"},
        {"attention": "varlen-padded"},
        {"attention": "varlen-segments"},
        {},
        {"pinned_memory": False},
    ],
    ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "automatic",
)
def test_gpu_fast_path_bf16(tok, texts, options):
    model = random_mistral("tiny", seed=0, dtype=torch.bfloat16, device="cuda")
    ref_bf16 = encode(model, tok, texts, device="cuda", **REFERENCE)
    ref_fp32 = encode(random_mistral("tiny", seed=0), tok, texts, **REFERENCE)
    got = encode(model, tok, texts, device="cuda", **options)
    _close_bf16(got, ref_bf16)
    _close_bf16(got, ref_fp32)


@pytest.mark.gpu
@gpu
def test_gpu_automatic_choice_and_budget(tok):
    model = random_mistral("tiny", seed=0, dtype=torch.bfloat16, device="cuda")
    enc = make(model, tok, device="cuda")
    assert enc.attention_mode() == "varlen-flash", enc.speed_settings()["attention_note"]
    budget = enc.fit_token_budget(limit=16384)
    assert 128 <= budget <= 16384
