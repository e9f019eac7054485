"""Throughput benchmark: the same texts encoded three ways in one process (README.md,
"Performance"): ``linq_eval`` (our encoder with its shipped ``SpeedOptions``), ``naive`` and
``sentence_transformers`` (``linq_eval.bench.ways``, over the same in-memory model). Every way
makes BOS + text + EOS inputs of at most ``max_length`` tokens, so their embeddings are
compared too. FLOPs and MFU: ``linq_eval.bench.measure``.

Only torch, transformers and linq_eval are needed (sentence-transformers is optional, the way
is skipped without it); neither mteb nor datasets is imported. Run it with::

    linq-eval bench --random-init tiny --device cpu --json bench.json
    python -m linq_eval.cli bench --random-init mistral-7b --device cuda --dtype bfloat16
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from linq_eval.bench import measure
from linq_eval.bench.lengthmix import length_mix
from linq_eval.bench.ways import (
    agreement,
    config_values,
    naive_encode,
    sentence_transformer,
    with_pad_token,
)
from linq_eval.errors import ConfigError, UnknownNameError
from linq_eval.model.devices import resolve_device, resolve_dtype
from linq_eval.model.encoder import DecoderEncoder
from linq_eval.model.loading import load_encoder
from linq_eval.model.random_models import random_encoder
from linq_eval.model.speed import AUTO, SpeedOptions
from linq_eval.profiles import RANDOM_MISTRALS, REPRODUCTION_MAX_LENGTH
from linq_eval.provenance import now

WAYS = ("linq_eval", "naive", "sentence_transformers")
_RANDOM_SIZES = tuple(RANDOM_MISTRALS)

Runner = Callable[[Sequence[str]], Any]


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
    max_length: int = REPRODUCTION_MAX_LENGTH
    """Tokens per input, BOS and EOS included."""
    n_texts: int = 2000
    """Texts in the length mix."""
    mix: str = "both"
    """scifact, synthetic or both (linq_eval.bench.lengthmix)."""
    seed: int = 0
    """Seed of the mix and the random weights."""
    token_budget: int | None = None
    """Tokens per forward pass of ours; None: the largest that fits on CUDA, the CPU default
    (``DEFAULT_TOKEN_BUDGET``) on CPU."""
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


@dataclass
class BenchSetup:
    """What every bench of one config shares: the encoder, the texts and their FLOPs."""

    config: BenchConfig
    device: torch.device
    dtype: torch.dtype
    encoder: DecoderEncoder
    texts: list[str]
    lengths: list[int]
    truncated: int
    flops: float
    peak_tflops: float | None


def prepare(config: BenchConfig) -> BenchSetup:
    """Validate ``config``, build our encoder (token budget fitted on CUDA unless given) and
    the length mix."""
    _validate(config)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    # Built without mteb, with no instructions: the mix carries its own prefixes.
    options: dict[str, Any] = {
        "device": str(device),
        "dtype": str(dtype).replace("torch.", ""),
        "max_length": config.max_length,
        "policy": "none",
        "instructions": None,
        "progress": False,
        "speed": SpeedOptions(attention=config.attention or AUTO, token_budget=config.token_budget),
    }
    if config.random_init is None:
        encoder = load_encoder(config.model, **options)
    else:
        encoder = random_encoder(config.random_init, seed=config.seed, **options)
    texts = length_mix(config.mix, config.n_texts, seed=config.seed)
    tokenized = encoder.tokenize(texts)
    lengths = [len(ids) for ids in tokenized.ids]
    flops = measure.model_flops(encoder.model, lengths)
    peak = measure.matmul_peak_tflops(device) if device.type == "cuda" else None
    truncated = tokenized.n_truncated
    return BenchSetup(config, device, dtype, encoder, texts, lengths, truncated, flops, peak)


# ----------------------------------------------------------------------------- entry point


def run_bench(config: BenchConfig | None = None, **overrides: Any) -> dict[str, Any]:
    """Run the benchmark and return its record (what ``--json`` writes).

    Options are BenchConfig's fields, as a config object or keyword arguments.
    """
    setup = prepare(dataclasses.replace(config or BenchConfig(), **overrides))
    runners, notes = _runners(setup)
    counter = measure.TokenCounter(setup.encoder.model)
    timed = _Timed({}, {}, {}, {})

    def around(name: str, timed_call: Callable[[], Any]) -> None:
        """Computed tokens, peak memory and the embeddings of each way, around its timing."""
        measure.reset_peak_memory(setup.device)
        counter.reset()
        emb = timed_call()
        timed.computed[name] = counter.tokens
        peak = max(timed.peaks.get(name) or 0, measure.peak_memory(setup.device) or 0)
        timed.peaks[name] = peak or None
        timed.outputs[name] = np.asarray(emb, dtype=np.float32)

    try:
        notes |= warm_up(runners, setup, required="linq_eval")
        timed.times = time_interleaved(runners, setup, around)
    finally:
        counter.remove()
    ways = {name: _way_record(name, timed, setup) for name in runners}
    for name, note in notes.items():
        ways[name] = {"note": note}
    return _bench_record(setup, ways, list(runners))


def _runners(setup: BenchSetup) -> tuple[dict[str, Runner], dict[str, str]]:
    """The ways to time, and why any asked for cannot run here."""
    config, encoder, device, model = setup.config, setup.encoder, setup.device, setup.encoder.model
    runners: dict[str, Runner] = {
        "linq_eval": lambda batch: encoder.encode_texts(list(batch), normalize=True, progress=False)
    }
    notes: dict[str, str] = {}
    if "naive" in config.ways:
        naive_tok = with_pad_token(encoder.tokenizer)
        runners["naive"] = lambda batch: naive_encode(
            model, naive_tok, batch, config.max_length, config.naive_batch_size, device
        )
    if "sentence_transformers" in config.ways:
        try:
            st = sentence_transformer(
                model, encoder.tokenizer, encoder.special, config.max_length, device
            )
        except Exception as exc:  # noqa: BLE001 - a missing or incompatible optional package
            notes["sentence_transformers"] = f"skipped: {type(exc).__name__}: {exc}"
        else:

            def run_st(batch: Sequence[str]) -> np.ndarray:
                with config_values(model.config, use_cache=False):
                    return st.encode(
                        list(batch),
                        batch_size=config.st_batch_size,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    )

            runners["sentence_transformers"] = run_st
    return runners, notes


def warm_up(runners: dict[str, Runner], setup: BenchSetup, required: str) -> dict[str, str]:
    """Run each way once on a few texts (kernels, allocator, our self-check); a way that fails
    is removed from ``runners`` and noted, except ``required``, whose failure is raised."""
    warm = setup.texts[: min(len(setup.texts), 64)]
    failed: dict[str, str] = {}
    for name, run in list(runners.items()):
        try:
            run(warm)
        except Exception as exc:  # a way this machine cannot run: noted, unless required
            if name == required:
                raise
            failed[name] = f"skipped, failed its warm-up: {type(exc).__name__}: {str(exc)[:300]}"
            del runners[name]
    measure.sync(setup.device)
    return failed


def time_interleaved(
    runners: dict[str, Runner],
    setup: BenchSetup,
    around: Callable[[str, Callable[[], Any]], None] | None = None,
) -> dict[str, list[float]]:
    """Seconds of each way on all texts, ``repeats`` times, interleaved so that noise hits
    every way alike. ``around(name, timed_call)`` may wrap each call (counters, memory)."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    around = around or (lambda name, timed_call: timed_call())
    for _ in range(setup.config.repeats):
        for name, run in runners.items():

            def timed(run: Runner = run, name: str = name) -> Any:
                measure.sync(setup.device)
                started = time.perf_counter()
                out = run(setup.texts)
                measure.sync(setup.device)
                times[name].append(time.perf_counter() - started)
                return out

            around(name, timed)
    return times


@dataclass
class _Timed:
    times: dict[str, list[float]]
    computed: dict[str, int]
    peaks: dict[str, int | None]
    outputs: dict[str, np.ndarray]


def _way_record(name: str, timed: _Timed, setup: BenchSetup) -> dict[str, Any]:
    times, computed = timed.times[name], timed.computed[name]
    seconds = float(np.median(times))
    achieved = setup.flops / seconds / 1e12
    real_tokens = sum(setup.lengths)
    record = {
        "seconds": round(seconds, 4),
        "seconds_min": round(min(times), 4),
        "seconds_all": [round(t, 4) for t in times],
        "texts_per_s": round(len(setup.texts) / seconds, 2),
        "tokens_per_s": round(real_tokens / seconds, 1),
        "tokens_computed": computed,
        "padding_efficiency": round(real_tokens / computed, 4) if computed else None,
        "peak_memory_bytes": timed.peaks[name],
        "tflops": round(achieved, 3) if setup.device.type == "cuda" else None,
        "mfu": round(achieved / setup.peak_tflops, 4) if setup.peak_tflops else None,
    }
    if name != "linq_eval":
        record["agreement_with_linq_eval"] = agreement(
            timed.outputs["linq_eval"], timed.outputs[name]
        )
    return record


def _bench_record(
    setup: BenchSetup, ways: dict[str, dict[str, Any]], ran: list[str]
) -> dict[str, Any]:
    ours, config, device, model = ways["linq_eval"], setup.config, setup.device, setup.encoder.model
    real_tokens = sum(setup.lengths)

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
            "n": len(setup.texts),
            "mix": config.mix,
            "real_tokens": real_tokens,
            "mean_tokens": round(real_tokens / len(setup.texts), 1),
            "truncated_share": round(setup.truncated / len(setup.texts), 4),
            "gflop": round(setup.flops / 1e9, 1),
        },
        "matmul_peak_tflops": round(setup.peak_tflops, 1) if setup.peak_tflops else None,
        "device": measure.device_info(device),
        "versions": measure.versions(),
        "settings": {
            **settings_of(setup),
            "ways": ran,
            "model_params": sum(p.numel() for p in model.parameters()),
            "matmul_params": measure.matmul_params(model),
            "flops_per_token_formula": "2*P*l + 2*n_layers*(n_heads*head_dim)*l*(l+1) per text",
            "memory_measure": "torch.cuda.max_memory_allocated"
            if device.type == "cuda"
            else "process peak RSS (VmHWM, reset before each way)",
            "encoder": setup.encoder.speed_settings(),
        },
        "date": now(),
    }


def settings_of(setup: BenchSetup) -> dict[str, Any]:
    """The config as recorded (without ``ways``), with the resolved dtype and device."""
    config = {k: v for k, v in dataclasses.asdict(setup.config).items() if k != "ways"}
    return config | {"dtype": str(setup.dtype).replace("torch.", ""), "device": str(setup.device)}


def format_table(result: dict[str, Any]) -> str:
    """The benchmark record as a short text table."""
    device, texts, settings = result["device"], result["texts"], result["settings"]
    lines = [
        (
            f"# {texts['n']} texts ({texts['mix']}), {texts['real_tokens']:,} tokens, mean "
            f"{texts['mean_tokens']}; {device['name']} ({device['type']}), {settings['dtype']}, "
            f"max_length {settings['max_length']}, attention {settings['encoder']['attention']}, "
            f"token budget {settings['encoder']['token_budget']}"
        ),
    ]
    if result["matmul_peak_tflops"]:
        lines.append(f"# measured bf16 matmul peak: {result['matmul_peak_tflops']} TFLOP/s")
    lines.append(
        f"{'way':22} {'seconds':>8} {'texts/s':>9} {'tokens/s':>10} {'pad.eff':>7} "
        f"{'peak mem':>9} {'TFLOP/s':>8} {'MFU':>6} {'vs ours':>7}"
    )
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


def _validate(config: BenchConfig) -> None:
    """One ConfigError listing every problem (the token budget is the encoder's to check)."""
    problems = []
    if (config.random_init is None) == (not config.model):
        problems.append("give exactly one of --model and --random-init")
    if config.random_init is not None and config.random_init not in _RANDOM_SIZES:
        raise UnknownNameError("model size", config.random_init, _RANDOM_SIZES)
    unknown = [w for w in config.ways if w not in WAYS]
    if unknown:
        problems.append(f"unknown ways {unknown}; valid: {', '.join(WAYS)}")
    if "linq_eval" not in config.ways:
        problems.append("ways must include linq_eval")
    for name in ("n_texts", "repeats", "naive_batch_size", "st_batch_size"):
        if getattr(config, name) < 1:
            problems.append(f"{name} must be at least 1, got {getattr(config, name)}")
    if problems:
        raise ConfigError("; ".join(problems))


__all__ = [
    "WAYS",
    "BenchConfig",
    "BenchSetup",
    "Runner",
    "format_table",
    "prepare",
    "run_bench",
    "settings_of",
    "time_interleaved",
    "warm_up",
]
