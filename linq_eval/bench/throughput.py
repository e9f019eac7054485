"""Throughput benchmark: the same texts encoded three ways in one process.

- ``linq_eval``: our encoder (``DecoderEncoder.encode_texts``: dedup, length-sorted token-budget
  batches, packed rows with varlen attention, no KV cache, pinned asynchronous copies);
- ``naive``: the model card's recipe as written: fixed batches in input order, the tokenizer
  called per batch with ``padding=True``, ``model(**batch)``, the card's ``last_token_pool``;
- ``sentence_transformers``: ``SentenceTransformer.encode`` with last-token pooling over the
  same in-memory model, which is what mteb's own wrapper for this model runs.

Every way gets the same raw texts and produces BOS + text + EOS inputs of at most
``max_length`` tokens (the naive recipe and the SentenceTransformer's tokenizer append EOS, as
the card's e5 evaluation code does), so their embeddings are compared too.

Only torch, transformers and linq_eval are needed (sentence-transformers is optional, the way
is skipped without it); neither mteb nor datasets is imported. Run it with::

    linq-eval bench --random-init tiny --device cpu --json bench.json
    python -m linq_eval.cli bench --random-init mistral-7b --device cuda --dtype bfloat16

FLOPs per text of ``l`` tokens (useful work: real tokens only, padding excluded)::

    2 * P * l  +  2 * n_layers * (n_heads * head_dim) * l * (l + 1)

with ``P`` the weights of the model's matrix products (every ``nn.Linear``; the embedding
lookup is no product). The second term is causal attention: the query at position i meets i
keys, 2 FLOPs per multiply-add for QK^T and again for AV. Mistral-7B: P = 6.98 G, 14.0 GFLOP
per token plus 0.26 MFLOP per token of context. MFU is achieved FLOP/s over the bf16 matrix
product peak measured in the same run (8192^3, timed with CUDA events).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as _dt
import importlib.metadata
import logging
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch

from linq_eval.errors import ConfigError, UnknownNameError

logger = logging.getLogger(__name__)

WAYS = ("linq_eval", "naive", "sentence_transformers")
RANDOM_SIZES = ("mistral-7b", "tiny")


@dataclass(frozen=True)
class BenchConfig:
    """What to benchmark; every field is recorded in the JSON's ``settings``."""

    model: str | None = None
    """Profile name, hub id or local path (ignored when ``random_init`` is set)."""
    random_init: str | None = None
    """Randomly initialised Mistral of this size (mistral-7b, tiny) with Mistral's tokenizer."""
    device: str = "auto"
    """cpu, cuda, cuda:N, or auto (CUDA when available)."""
    dtype: str = "auto"
    """auto (bf16 on CUDA, fp32 on CPU), bfloat16, float16 or float32."""
    max_length: int = 512
    """Tokens per input, BOS and EOS included."""
    n_texts: int = 2000
    """Texts in the length mix."""
    mix: str = "both"
    """scifact, synthetic or both (linq_eval.bench.lengthmix)."""
    seed: int = 0
    """Seed of the mix and the random weights."""
    token_budget: int | None = None
    """Tokens per forward pass of ours; None: the largest that fits on CUDA, 8192 on CPU."""
    repeats: int = 3
    """Timed passes per way (after one untimed warm-up on a small subset); medians reported."""
    naive_batch_size: int = 16
    """Texts per batch of the naive recipe."""
    st_batch_size: int = 32
    """Texts per batch of SentenceTransformer.encode (mteb's default)."""
    ways: tuple[str, ...] = WAYS
    """Which ways to run; ``linq_eval`` is required."""
    attention: str | None = None
    """Force ours to an attention mode (padded, varlen-flash, varlen-padded, varlen-segments)."""
    threads: int | None = None
    """torch CPU threads (None: torch's default)."""


# ----------------------------------------------------------------------------- entry point


def run_bench(config: BenchConfig | None = None, **overrides: Any) -> dict[str, Any]:
    """Run the benchmark and return its record (what ``--json`` writes).

    Options are BenchConfig's fields, as a config object or keyword arguments.
    """
    config = dataclasses.replace(config or BenchConfig(), **overrides)
    _validate(config)
    from linq_eval.model.encoder import resolve_device, resolve_dtype
    from linq_eval.bench.lengthmix import length_mix

    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    encoder = _build_encoder(config, device, dtype)
    model, tokenizer = encoder.model, encoder.tokenizer
    if config.attention is not None:
        encoder._attention = config.attention
    if config.token_budget is not None:
        encoder.token_budget = config.token_budget
    elif device.type == "cuda":
        encoder._fit_token_budget()

    texts = length_mix(config.mix, config.n_texts, seed=config.seed)
    from linq_eval.model.tokenization import tokenize

    tokenized = tokenize(tokenizer, texts, encoder.special, config.max_length)
    lengths = [len(ids) for ids in tokenized.ids]
    flops = model_flops(model, lengths)
    peak_tflops = matmul_peak_tflops(device) if device.type == "cuda" else None

    runners: dict[str, Callable[[Sequence[str]], np.ndarray]] = {
        "linq_eval": lambda batch: encoder.encode_texts(
            list(batch), normalize=True, progress=False
        ),
    }
    notes: dict[str, str] = {}
    if "naive" in config.ways:
        naive_tok = _with_pad_token(tokenizer)
        runners["naive"] = lambda batch: naive_encode(
            model, naive_tok, batch, config.max_length, config.naive_batch_size, device
        )
    if "sentence_transformers" in config.ways:
        try:
            st = _sentence_transformer(model, tokenizer, encoder.special, config.max_length, device)
        except Exception as exc:  # noqa: BLE001 - a missing or incompatible optional package
            notes["sentence_transformers"] = f"skipped: {type(exc).__name__}: {exc}"
        else:

            def run_st(batch: Sequence[str]) -> np.ndarray:
                with _config_values(model.config, use_cache=False):
                    return st.encode(
                        list(batch),
                        batch_size=config.st_batch_size,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    )

            runners["sentence_transformers"] = run_st

    counter = _TokenCounter(model)
    warm = texts[: min(len(texts), 64)]
    for name, run in list(runners.items()):  # warm-up: kernels, allocator, our self-check
        try:
            run(warm)
        except Exception as exc:
            if name == "linq_eval":
                raise
            notes[name] = f"skipped, failed its warm-up: {type(exc).__name__}: {exc}"
            del runners[name]
    _sync(device)

    times: dict[str, list[float]] = {name: [] for name in runners}
    computed: dict[str, int] = {}
    peaks: dict[str, int | None] = {}
    outputs: dict[str, np.ndarray] = {}
    for _ in range(config.repeats):
        for name, run in runners.items():  # interleaved, so that noise hits every way alike
            _reset_peak_memory(device)
            counter.reset()
            _sync(device)
            started = time.perf_counter()
            emb = run(texts)
            _sync(device)
            times[name].append(time.perf_counter() - started)
            computed[name] = counter.tokens
            peaks[name] = max(peaks.get(name) or 0, _peak_memory(device) or 0) or None
            outputs[name] = np.asarray(emb, dtype=np.float32)
    counter.remove()

    real_tokens = sum(lengths)
    ways: dict[str, dict[str, Any]] = {}
    for name in runners:
        seconds = float(np.median(times[name]))
        achieved = flops / seconds / 1e12
        ways[name] = {
            "seconds": round(seconds, 4),
            "seconds_min": round(min(times[name]), 4),
            "seconds_all": [round(t, 4) for t in times[name]],
            "texts_per_s": round(len(texts) / seconds, 2),
            "tokens_per_s": round(real_tokens / seconds, 1),
            "tokens_computed": computed[name],
            "padding_efficiency": round(real_tokens / computed[name], 4)
            if computed[name]
            else None,
            "peak_memory_bytes": peaks[name],
            "tflops": round(achieved, 3) if device.type == "cuda" else None,
            "mfu": round(achieved / peak_tflops, 4) if peak_tflops else None,
        }
        if name != "linq_eval":
            ways[name]["agreement_with_linq_eval"] = _agreement(outputs["linq_eval"], outputs[name])
    for name, note in notes.items():
        ways[name] = {"note": note}
    ours = ways["linq_eval"]

    def speedup(other: str) -> float | None:
        if "seconds" not in ways.get(other, {}):
            return None
        return round(ways[other]["seconds"] / ours["seconds"], 3)

    return {
        "speedup_vs_naive": speedup("naive"),
        "speedup_vs_sentence_transformers": speedup("sentence_transformers"),
        "padding_efficiency": ours["padding_efficiency"],
        "tokens_per_s": ours["tokens_per_s"],
        "mfu": ours["mfu"],
        "ways": ways,
        "texts": {
            "n": len(texts),
            "mix": config.mix,
            "real_tokens": real_tokens,
            "mean_tokens": round(real_tokens / len(texts), 1),
            "truncated_share": round(tokenized.n_truncated / len(texts), 4),
            "gflop": round(flops / 1e9, 1),
        },
        "matmul_peak_tflops": round(peak_tflops, 1) if peak_tflops else None,
        "device": _device_info(device),
        "versions": _versions(),
        "settings": {
            **{k: v for k, v in dataclasses.asdict(config).items() if k != "ways"},
            "ways": list(runners),
            "dtype": str(dtype).replace("torch.", ""),
            "device": str(device),
            "model_params": sum(p.numel() for p in model.parameters()),
            "matmul_params": _matmul_params(model),
            "flops_per_token_formula": "2*P*l + 2*n_layers*(n_heads*head_dim)*l*(l+1) per text",
            "memory_measure": "torch.cuda.max_memory_allocated"
            if device.type == "cuda"
            else "process peak RSS (VmHWM, reset before each way)",
            "encoder": encoder._speed_settings(),
        },
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def format_table(result: dict[str, Any]) -> str:
    """The benchmark record as a short text table."""
    device = result["device"]
    lines = [
        (
            f"# {result['texts']['n']} texts ({result['texts']['mix']}), "
            f"{result['texts']['real_tokens']:,} tokens, mean {result['texts']['mean_tokens']}; "
            f"{device['name']} ({device['type']}), {result['settings']['dtype']}, "
            f"max_length {result['settings']['max_length']}, "
            f"attention {result['settings']['encoder']['attention']}, "
            f"token budget {result['settings']['encoder']['token_budget']}"
        ),
    ]
    if result["matmul_peak_tflops"]:
        lines.append(f"# measured bf16 matmul peak: {result['matmul_peak_tflops']} TFLOP/s")
    header = (
        f"{'way':22} {'seconds':>8} {'texts/s':>9} {'tokens/s':>10} {'pad.eff':>7} "
        f"{'peak mem':>9} {'TFLOP/s':>8} {'MFU':>6} {'vs ours':>7}"
    )
    lines.append(header)
    ours = result["ways"]["linq_eval"]["seconds"]
    for name in WAYS:
        way = result["ways"].get(name)
        if way is None:
            continue
        if "seconds" not in way:
            lines.append(f"{name:22} {way.get('note', '')}")
            continue
        mem = f"{way['peak_memory_bytes'] / 2**30:.2f}G" if way["peak_memory_bytes"] else "—"
        tflops = f"{way['tflops']:.1f}" if way["tflops"] is not None else "—"
        mfu = f"{way['mfu']:.1%}" if way["mfu"] is not None else "—"
        lines.append(
            f"{name:22} {way['seconds']:8.2f} {way['texts_per_s']:9.1f} "
            f"{way['tokens_per_s']:10,.0f} {way['padding_efficiency']:7.3f} {mem:>9} "
            f"{tflops:>8} {mfu:>6} {way['seconds'] / ours:6.2f}x"
        )
    lines.append(
        f"speedup_vs_naive {result['speedup_vs_naive']}  "
        f"speedup_vs_sentence_transformers {result['speedup_vs_sentence_transformers']}"
    )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- one by one

ABLATION_STEPS: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "1 sorted token-budget batches, padded, KV cache built",
        {"_attention": "padded", "_no_kv_cache": False, "_pinned": False},
    ),
    ("2 + no KV cache", {"_attention": "padded", "_pinned": False}),
    ("3 + packed rows, varlen attention", {"_pinned": False}),
    ("4 + pinned memory, async copies (CUDA)", {}),
    ("5 + tokenization overlapped", {"overlap": True}),
    ("6 + fused RMSNorm (torch.rms_norm)", {"overlap": True, "_elementwise": "fused"}),
    (
        "7 + compiled RMSNorm, SiLU-mul (torch.compile)",
        {"overlap": True, "_elementwise": "compiled"},
    ),
)
"""The ladder of techniques, each step with every technique above it (6 and 7 are
alternatives). Step 4 is the encoder as shipped; step 4 is skipped off CUDA."""

SHIPPED: dict[str, Any] = {}
"""Knobs of the encoder as it ships (its defaults), the base of the kernel and budget rows."""


def run_ablation(
    config: BenchConfig | None = None,
    *,
    kernels: bool = True,
    budgets: Sequence[float] = (0.25, 0.5),
    compile_step: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """Time each technique one by one, on the same texts and model, in one process.

    Rows: the naive recipe; the ABLATION_STEPS ladder (each step keeps the previous ones);
    every packed attention kernel this device offers (``kernels``); and the final setup at
    fractions of the token budget (``budgets``). Variants run interleaved, ``repeats`` times;
    medians are reported with speedups over naive and over the first step.
    """
    config = dataclasses.replace(config or BenchConfig(), **overrides)
    _validate(config)
    from linq_eval.model.encoder import (
        _packed_kernels,
        resolve_device,
        resolve_dtype,
    )
    from linq_eval.bench.lengthmix import length_mix
    from linq_eval.model.tokenization import tokenize

    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    base = _build_encoder(config, device, dtype)
    model, tokenizer = base.model, base.tokenizer
    budget = config.token_budget or (
        base._fit_token_budget() if device.type == "cuda" else base.token_budget
    )
    texts = length_mix(config.mix, config.n_texts, seed=config.seed)
    lengths = [len(ids) for ids in tokenize(tokenizer, texts, base.special, config.max_length).ids]
    flops = model_flops(model, lengths)
    peak = matmul_peak_tflops(device) if device.type == "cuda" else None

    def encoder_with(knobs: dict[str, Any], token_budget: int) -> Callable[[Sequence[str]], Any]:
        enc = _build_encoder_like(base, token_budget)
        overlap = False
        for key, value in knobs.items():
            if key == "overlap":
                overlap = value
            else:
                setattr(enc, key, value)
        if overlap:
            # Chunks of an eighth of the texts, so that there is something to overlap.
            return lambda batch: enc._encode_overlapped(list(batch), chunk=max(64, len(batch) // 8))
        return lambda batch: enc.encode_texts(list(batch), normalize=False, progress=False)

    variants: dict[str, Callable[[Sequence[str]], Any]] = {}
    naive_tok = _with_pad_token(tokenizer)
    variants["naive (model card recipe)"] = lambda batch: naive_encode(
        model, naive_tok, batch, config.max_length, config.naive_batch_size, device
    )
    for name, knobs in ABLATION_STEPS:
        if name.endswith("(CUDA)") and device.type != "cuda":
            continue
        if knobs.get("_elementwise") == "compiled" and not compile_step:
            continue
        variants[name] = encoder_with(knobs, budget)
    if kernels:
        for kernel in _packed_kernels(device, dtype):
            variants[f"shipped, kernel varlen-{kernel}"] = encoder_with(
                {**SHIPPED, "_attention": f"varlen-{kernel}"}, budget
            )
    for fraction in budgets:
        small = max(config.max_length, int(budget * fraction))
        variants[f"shipped, token budget {small}"] = encoder_with(SHIPPED, small)

    warm = texts[: min(len(texts), 64)]
    failed: dict[str, str] = {}
    for name, run in list(variants.items()):
        try:
            run(warm)
        except Exception as exc:  # noqa: BLE001 - a variant this machine cannot run
            failed[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
            del variants[name]
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(config.repeats):
        for name, run in variants.items():
            _sync(device)
            started = time.perf_counter()
            run(texts)
            _sync(device)
            times[name].append(time.perf_counter() - started)

    real = sum(lengths)
    naive_s = float(np.median(times["naive (model card recipe)"]))
    first = next(iter(n for n in variants if n != "naive (model card recipe)"))
    first_s = float(np.median(times[first]))
    rows = []
    for name in variants:
        seconds = float(np.median(times[name]))
        achieved = flops / seconds / 1e12
        rows.append(
            {
                "variant": name,
                "seconds": round(seconds, 4),
                "seconds_min": round(min(times[name]), 4),
                "seconds_all": [round(t, 4) for t in times[name]],
                "tokens_per_s": round(real / seconds, 1),
                "speedup_vs_naive": round(naive_s / seconds, 3),
                "speedup_vs_first_step": round(first_s / seconds, 3),
                "mfu": round(achieved / peak, 4) if peak else None,
            }
        )
    for name, why in failed.items():
        rows.append({"variant": name, "failed": why})
    return {
        "ablation": rows,
        "texts": {"n": len(texts), "mix": config.mix, "real_tokens": real},
        "token_budget": budget,
        "matmul_peak_tflops": round(peak, 1) if peak else None,
        "device": _device_info(device),
        "versions": _versions(),
        "settings": {k: v for k, v in dataclasses.asdict(config).items() if k != "ways"}
        | {"dtype": str(dtype).replace("torch.", ""), "device": str(device)},
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def format_ablation(result: dict[str, Any]) -> str:
    """The ablation record as a short text table."""
    lines = [
        (
            f"# ablation: {result['texts']['n']} texts ({result['texts']['mix']}), "
            f"{result['texts']['real_tokens']:,} tokens; {result['device']['name']}, "
            f"{result['settings']['dtype']}, token budget {result['token_budget']}"
        ),
        (
            f"{'variant':52} {'seconds':>8} {'tokens/s':>10} {'vs naive':>8} {'vs step 1':>9} "
            f"{'MFU':>6}"
        ),
    ]
    for row in result["ablation"]:
        if "failed" in row:
            lines.append(f"{row['variant']:52} failed: {row['failed'][:80]}")
            continue
        mfu = f"{row['mfu']:.1%}" if row["mfu"] is not None else "—"
        lines.append(
            f"{row['variant']:52} {row['seconds']:8.2f} {row['tokens_per_s']:10,.0f} "
            f"{row['speedup_vs_naive']:7.2f}x {row['speedup_vs_first_step']:8.2f}x {mfu:>6}"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the three ways


def naive_encode(
    model: torch.nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    batch_size: int,
    device: torch.device,
) -> np.ndarray:
    """The model card's recipe: fixed batches in input order, ``padding=True``, last token.

    As in the card's e5 evaluation code, the text is truncated to ``max_length - 1`` tokens
    (BOS included) and EOS appended, then the batch is padded by the tokenizer.
    """
    import torch.nn.functional as F

    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            list(texts[start : start + batch_size]),
            max_length=max_length - 1,
            truncation=True,
            padding=False,
        )
        batch["input_ids"] = [ids + [tokenizer.eos_token_id] for ids in batch["input_ids"]]
        batch["attention_mask"] = [mask + [1] for mask in batch["attention_mask"]]
        batch_dict = tokenizer.pad(batch, padding=True, return_tensors="pt").to(device)
        with torch.no_grad():
            outputs = model(**batch_dict)
        embeddings = last_token_pool(outputs.last_hidden_state, batch_dict["attention_mask"])
        out.append(F.normalize(embeddings, p=2, dim=1).float().cpu())
    return torch.cat(out).numpy()


def last_token_pool(last_hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The model card's pooling function."""
    left_padding = attention_mask[:, -1].sum() == attention_mask.shape[0]
    if left_padding:
        return last_hidden_states[:, -1]
    sequence_lengths = attention_mask.sum(dim=1) - 1
    batch_size = last_hidden_states.shape[0]
    return last_hidden_states[
        torch.arange(batch_size, device=last_hidden_states.device), sequence_lengths
    ]


def _sentence_transformer(
    model: torch.nn.Module, tokenizer: Any, special: Any, max_length: int, device: torch.device
) -> Any:
    """A SentenceTransformer (Transformer, last-token Pooling, Normalize) around ``model``.

    Built without downloads: the Transformer module reads the config and a tokenizer copy
    (EOS appended by its post-processor) from a temporary folder, and its model loader is
    patched to hand over the model already in memory.
    """
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer.modules import (
            Normalize,
            Pooling,
            Transformer,
        )
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Normalize, Pooling, Transformer

    st_tokenizer = _with_pad_token(tokenizer)
    # sentence-transformers 6 wraps text in a tokenizer's chat template when it has one
    # (SmolLM2-Instruct's does): the inputs must stay plain text, as for the other two ways.
    st_tokenizer.chat_template = None
    with tempfile.TemporaryDirectory() as folder:
        model.config.save_pretrained(folder)
        st_tokenizer.save_pretrained(folder)
        with mock.patch.object(Transformer, "_load_model", lambda self, *a, **k: model):
            module = Transformer(folder, max_seq_length=max_length)
    # On the tokenizer as loaded: some tokenizer classes rebuild their post-processor from
    # their own add_bos/add_eos flags when they are loaded.
    _append_special_tokens(module.tokenizer, special)
    dim = model.config.hidden_size
    st = SentenceTransformer(
        modules=[module, Pooling(dim, pooling_mode="lasttoken"), Normalize()], device=str(device)
    )
    return st


# ----------------------------------------------------------------------------- helpers


def _validate(config: BenchConfig) -> None:
    problems = []
    if (config.random_init is None) == (not config.model):
        problems.append("give exactly one of --model and --random-init")
    if config.random_init is not None and config.random_init not in RANDOM_SIZES:
        raise UnknownNameError("model size", config.random_init, RANDOM_SIZES)
    unknown = [w for w in config.ways if w not in WAYS]
    if unknown:
        problems.append(f"unknown ways {unknown}; valid: {', '.join(WAYS)}")
    if "linq_eval" not in config.ways:
        problems.append("ways must include linq_eval")
    for name in ("n_texts", "repeats", "naive_batch_size", "st_batch_size"):
        if getattr(config, name) < 1:
            problems.append(f"{name} must be at least 1, got {getattr(config, name)}")
    if config.token_budget is not None and config.token_budget < config.max_length:
        problems.append(
            f"token_budget {config.token_budget} is below max_length {config.max_length}"
        )
    if problems:
        raise ConfigError("; ".join(problems))


def _build_encoder_like(base: Any, token_budget: int) -> Any:
    """A fresh encoder over ``base``'s model, tokenizer and profile (its own knobs and stats)."""
    from linq_eval.model.encoder import DecoderEncoder

    return DecoderEncoder(
        base.model,
        base.tokenizer,
        base.profile,
        device=base.device,
        token_budget=token_budget,
        progress=False,
        attn_implementation=base.attn_implementation,
    )


def _build_encoder(config: BenchConfig, device: torch.device, dtype: torch.dtype) -> Any:
    """Our encoder, built without mteb: no instructions (the mix carries its own prefixes)."""
    from linq_eval.model.encoder import DecoderEncoder, load_encoder

    if config.random_init is None:
        return load_encoder(
            config.model,
            device=str(device),
            dtype=str(dtype).replace("torch.", ""),
            max_length=config.max_length,
            policy="none",
            instructions=None,
            token_budget=config.token_budget,
            progress=False,
        )
    from linq_eval.model.profiles import get_profile
    from linq_eval.model.random_models import mistral_tokenizer, random_mistral

    profile = get_profile("linq-embed-mistral").with_overrides(
        name=f"random-{config.random_init}",
        model=f"linq-eval/random-mistral-{config.random_init}",
        mteb_name=None,
        revision=f"seed-{config.seed}",
        policy="none",
        instructions=None,
        max_length=config.max_length,
        dtype=str(dtype).replace("torch.", ""),
    )
    model = random_mistral(config.random_init, dtype=dtype, device=device, seed=config.seed)
    return DecoderEncoder(
        model,
        mistral_tokenizer(),
        profile,
        device=device,
        token_budget=config.token_budget,
        progress=False,
        attn_implementation="sdpa",
    )


def model_flops(model: torch.nn.Module, lengths: Sequence[int]) -> float:
    """FLOPs of encoding inputs of these lengths (see the module docstring)."""
    config = model.config
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    params = _matmul_params(model)
    n = np.asarray(lengths, dtype=np.float64)
    attention = 2.0 * config.num_hidden_layers * heads * head_dim * (n * (n + 1)).sum()
    return float(2.0 * params * n.sum() + attention)


def _matmul_params(model: torch.nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def matmul_peak_tflops(device: torch.device, n: int = 8192, iters: int = 10) -> float:
    """bf16 n^3 matrix product rate on this GPU, timed with CUDA events (TFLOP/s)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize(device)
    start.record()
    for _ in range(iters):
        a @ b
    end.record()
    torch.cuda.synchronize(device)
    seconds = start.elapsed_time(end) / 1000
    del a, b
    torch.cuda.empty_cache()
    return 2 * n**3 * iters / seconds / 1e12


class _TokenCounter:
    """Counts the token positions each forward pass computes: the ids that go through the
    model's input embedding (sentence-transformers calls ``model.forward`` directly, past
    any hook on the model itself)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.tokens = 0
        self._handle = model.get_input_embeddings().register_forward_pre_hook(self._hook)

    def _hook(self, module: Any, args: tuple) -> None:
        if args and isinstance(args[0], torch.Tensor):
            self.tokens += args[0].numel()

    def reset(self) -> None:
        self.tokens = 0

    def remove(self) -> None:
        self._handle.remove()


def _with_pad_token(tokenizer: Any) -> Any:
    """A copy of the tokenizer that pads with EOS when it has no pad token (as Mistral's)."""
    tok = copy.deepcopy(tokenizer)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _append_special_tokens(tokenizer: Any, special: Any) -> None:
    """Make a fast tokenizer wrap every text in our BOS/EOS ids itself (for sentence-transformers)."""
    from tokenizers import processors

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ConfigError(f"{type(tokenizer).__name__} is not a fast tokenizer")
    pre = [tokenizer.convert_ids_to_tokens(i) for i in special.prefix]
    suf = [tokenizer.convert_ids_to_tokens(i) for i in special.suffix]
    backend.post_processor = processors.TemplateProcessing(
        single=[*pre, "$A", *suf],
        special_tokens=sorted(set(zip(pre + suf, [*special.prefix, *special.suffix]))),
    )


@contextlib.contextmanager
def _config_values(config: Any, **values: Any) -> Iterator[None]:
    old = {key: getattr(config, key, None) for key in values}
    for key, value in values.items():
        setattr(config, key, value)
    try:
        yield
    finally:
        for key, value in old.items():
            setattr(config, key, value)


def _agreement(ours: np.ndarray, other: np.ndarray) -> dict[str, float]:
    cos = (ours * other).sum(1) / np.maximum(
        np.linalg.norm(ours, axis=1) * np.linalg.norm(other, axis=1), 1e-12
    )
    return {"max_abs_diff": float(np.abs(ours - other).max()), "min_cosine": float(cos.min())}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError):  # Linux: "5" resets the peak RSS (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")


def _peak_memory(device: torch.device) -> int | None:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _device_info(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return {
            "type": "cuda",
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count,
            "capability": f"{props.major}.{props.minor}",
        }
    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return {
        "type": "cpu",
        "name": name,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for dist in (
        "linq-eval",
        "torch",
        "transformers",
        "tokenizers",
        "sentence-transformers",
        "numpy",
    ):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    versions["torch"] = torch.__version__
    versions["cuda"] = torch.version.cuda
    return versions
