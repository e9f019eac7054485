"""``linq-eval bench``."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import typer

from linq_eval.cli.app import app
from linq_eval.defaults import DEFAULT_TOKEN_BUDGET
from linq_eval.profiles import REPRODUCTION_MAX_LENGTH


@app.command("bench")
def _bench_command(
    ctx: typer.Context,
    model: str | None = typer.Option(
        None, "--model", help="Profile name, hub id or local path (instead of --random-init)."
    ),
    random_init: str | None = typer.Option(
        None, "--random-init", help="Random weights of a named size: mistral-7b or tiny."
    ),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, bfloat16, float16 or float32."),
    max_length: int = typer.Option(
        REPRODUCTION_MAX_LENGTH, "--max-length", help="Tokens per input."
    ),
    n_texts: int = typer.Option(2000, "--n-texts", help="Texts in the length mix."),
    token_budget: int | None = typer.Option(
        None,
        "--token-budget",
        help="Tokens per forward pass (default: largest that fits on CUDA, "
        f"{DEFAULT_TOKEN_BUDGET['cpu']} on CPU, or --max-length if longer).",
    ),
    mix: str = typer.Option("both", "--mix", help="scifact, synthetic or both."),
    repeats: int = typer.Option(3, "--repeats", help="Timed passes per way (medians)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the mix and the random weights."),
    naive_batch_size: int = typer.Option(16, "--naive-batch-size", help="Naive recipe batch."),
    st_batch_size: int = typer.Option(32, "--st-batch-size", help="SentenceTransformer batch."),
    ways: list[str] | None = typer.Option(
        None, "--way", help="Run only these ways (repeat): linq_eval, naive, sentence_transformers."
    ),
    attention: str | None = typer.Option(
        None,
        "--attention",
        help="Force our attention: padded, varlen-flash, varlen-padded, varlen-segments.",
    ),
    threads: int | None = typer.Option(None, "--threads", help="torch CPU threads."),
    ablation: bool = typer.Option(
        False, "--ablation", help="Time each speed technique one by one instead."
    ),
    json_path: str | None = typer.Option(None, "--json", help="Write the record to PATH."),
) -> None:
    """Encode an MTEB-like length mix three ways (ours, the model card's naive recipe,
    sentence-transformers) in one process; print a table, optionally write JSON.

    \b
    Examples:
      linq-eval bench --random-init tiny --device cpu --n-texts 1000 --json bench.json
      linq-eval bench --random-init mistral-7b --device cuda --dtype bfloat16 --repeats 2
      linq-eval bench --model linq-embed-mistral --mix scifact --way linq_eval --way naive
      linq-eval bench --random-init tiny --device cpu --ablation
    """
    from linq_eval.bench.ablation import format_ablation, run_ablation  # torch: see cli/__init__
    from linq_eval.bench.throughput import WAYS, BenchConfig, format_table, run_bench

    options = {k: v for k, v in ctx.params.items() if k not in ("ablation", "json_path")}
    options["random_init"] = random_init if random_init or model else "tiny"
    config = BenchConfig(**{**options, "ways": tuple(ways) if ways else WAYS})
    run, table = (run_ablation, format_ablation) if ablation else (run_bench, format_table)
    result = run(config)
    text = table(result)
    result["command"] = " ".join(["linq-eval", *sys.argv[1:]]) if sys.argv else None
    result["host"] = platform.node()
    typer.echo(text)
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        typer.echo(f"wrote {json_path}", err=True)


__all__: list[str] = []
