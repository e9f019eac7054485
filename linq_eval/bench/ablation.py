"""The ablation: each speed technique timed one by one, on the same texts and model.

Every variant is our encoder with other ``SpeedOptions`` (``DecoderEncoder.with_speed``),
beside the model card's naive recipe; nothing but the encoder's public API is used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from linq_eval.bench import measure
from linq_eval.bench.throughput import (
    BenchConfig,
    BenchSetup,
    prepare,
    settings_of,
    time_interleaved,
    warm_up,
)
from linq_eval.bench.ways import naive_encode, with_pad_token
from linq_eval.model.packed_attention import packed_kernels
from linq_eval.model.speed import SpeedOptions
from linq_eval.provenance import now

_NAIVE = "naive (model card recipe)"


_ABLATION_STEPS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("1 sorted token-budget batches, padded", {"attention": "padded", "pinned_memory": False}),
    ("2 + packed rows, varlen attention", {"pinned_memory": False}),
    ("3 + pinned memory, async copies (CUDA)", {}),
)
"""The ladder of techniques as changes to the shipped ``SpeedOptions``, each step with every
technique above it. Step 3 is the encoder as shipped; it is skipped off CUDA."""


def run_ablation(
    config: BenchConfig | None = None, *, budgets: Sequence[float] = (0.25, 0.5), **overrides: Any
) -> dict[str, Any]:
    """Time each technique one by one, on the same texts and model, in one process.

    Rows: the naive recipe; the ``_ABLATION_STEPS`` ladder (each step keeps the previous
    ones); every packed attention kernel this device offers; and the shipped
    setup at fractions of the token budget (``budgets``). Variants run interleaved,
    ``repeats`` times; medians are reported with speedups over naive and over the first step.
    """
    setup = prepare(dataclasses.replace(config or BenchConfig(), **overrides))
    budget = setup.encoder.token_budget
    variants = _variants(setup, budget, budgets)
    failed = warm_up(variants, setup, required=_NAIVE)
    times = time_interleaved(variants, setup)
    rows = _rows(times, setup)
    rows += [{"variant": name, "failed": why} for name, why in failed.items()]
    return {
        "ablation": rows,
        "texts": {
            "n": len(setup.texts),
            "mix": setup.config.mix,
            "real_tokens": sum(setup.lengths),
        },
        "token_budget": budget,
        "matmul_peak_tflops": round(setup.peak_tflops, 1) if setup.peak_tflops else None,
        "device": measure.device_info(setup.device),
        "versions": measure.versions(),
        "settings": settings_of(setup),
        "date": now(),
    }


def _variants(
    setup: BenchSetup, budget: int, budgets: Sequence[float]
) -> dict[str, Callable[[Sequence[str]], Any]]:
    config, base = setup.config, setup.encoder

    def encoder_with(token_budget: int, **changes: Any) -> Callable[[Sequence[str]], Any]:
        enc = base.with_speed(SpeedOptions(token_budget=token_budget, **changes))
        return lambda batch: enc.encode_texts(list(batch), normalize=False, progress=False)

    naive_tok = with_pad_token(base.tokenizer)
    variants: dict[str, Callable[[Sequence[str]], Any]] = {
        _NAIVE: lambda batch: naive_encode(
            base.model, naive_tok, batch, config.max_length, config.naive_batch_size, setup.device
        )
    }
    for name, changes in _ABLATION_STEPS:
        if name.endswith("(CUDA)") and setup.device.type != "cuda":
            continue
        variants[name] = encoder_with(budget, **changes)
    for kernel in packed_kernels(setup.device, setup.dtype):
        variants[f"shipped, kernel varlen-{kernel}"] = encoder_with(
            budget, attention=f"varlen-{kernel}"
        )
    for fraction in budgets:
        small = max(config.max_length, int(budget * fraction))
        variants[f"shipped, token budget {small}"] = encoder_with(small)
    return variants


def _rows(times: dict[str, list[float]], setup: BenchSetup) -> list[dict[str, Any]]:
    real = sum(setup.lengths)
    first = next(n for n in times if n != _NAIVE)
    naive_s, first_s = (float(np.median(times[n])) for n in (_NAIVE, first))
    rows = []
    for name, seconds_all in times.items():
        seconds = float(np.median(seconds_all))
        achieved = setup.flops / seconds / 1e12
        rows.append(
            {
                "variant": name,
                "seconds": round(seconds, 4),
                "seconds_min": round(min(seconds_all), 4),
                "seconds_all": [round(t, 4) for t in seconds_all],
                "tokens_per_s": round(real / seconds, 1),
                "speedup_vs_naive": round(naive_s / seconds, 3),
                "speedup_vs_first_step": round(first_s / seconds, 3),
                "mfu": round(achieved / setup.peak_tflops, 4) if setup.peak_tflops else None,
            }
        )
    return rows


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


__all__ = ["format_ablation", "run_ablation"]
