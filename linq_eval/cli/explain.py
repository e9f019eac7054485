"""``linq-eval explain``."""

from __future__ import annotations

from pathlib import Path

import typer

from linq_eval.cli.app import EXIT_FAIL, ListOptionsCommand, app
from linq_eval.cli.options import (
    BENCHMARK_DEFAULT_OPT,
    DATA_DIR_OPT,
    RESULT_TASKS_OPT,
    TASK_TYPES_OPT,
    TPS_OPT,
)
from linq_eval.errors import ConfigError
from linq_eval.results.compare import DEFAULT_TOLERANCE

_FORMATS = ("text", "markdown", "json")


@app.command("explain", cls=ListOptionsCommand)
def _explain_command(
    run: str = typer.Argument(
        ..., metavar="RUN", help="Run folder (what `linq-eval run --output` writes)."
    ),
    reference: str = typer.Option(
        ...,
        "--reference",
        help=(
            "The score to explain the gap to: a run folder, published:<org/model> (shipped) or "
            "remote:<org/model> (mteb's results repository)."
        ),
    ),
    benchmark: str = BENCHMARK_DEFAULT_OPT,
    tasks: list[str] | None = RESULT_TASKS_OPT,
    task_types: list[str] | None = TASK_TYPES_OPT,
    tolerance: float = typer.Option(
        DEFAULT_TOLERANCE, "--tolerance", help="A gap is a difference beyond this (points x100)."
    ),
    candidates: list[str] | None = typer.Option(
        None,
        "--candidates",
        help="Only these candidates: a setting (max_length) or one value (max_length=256).",
    ),
    data_dir: str | None = DATA_DIR_OPT,
    cache_dir: str | None = typer.Option(
        None, "--cache-dir", help="The run's embedding cache (default: OUTPUT/.linq_eval/...)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Only the plan: what each candidate would encode."
    ),
    tokens_per_s: float = TPS_OPT,
    output_format: str = typer.Option("text", "--format", help=f"{', '.join(_FORMATS)}."),
) -> None:
    """Find the setting that explains why a run's score misses its reference.

    For each task further than --tolerance from the reference, score it again under the
    settings that usually explain gaps (a decoder's EOS, precision, max_length, instruction
    policy and set; an encoder's max_length, pooling and normalisation), one change at a time
    from the run's recorded settings, on the data the run read, and name the change that
    lands within the tolerance. The plan comes first (texts and tokens each candidate
    encodes; a change of instructions re-encodes only the inputs whose prompt it changes,
    the rest coming from the run's embedding cache). Each candidate's results go to
    OUTPUT/.linq_eval/explain/<setting>=<value>/, never into the run. Exit 0: every gap
    explained (or none); 1: a gap none of the candidates explains; 2: unusable input.

    \b
    Examples:
      linq-eval explain runs/minilm --reference remote:sentence-transformers/all-MiniLM-L6-v2
      linq-eval explain runs/linq --reference published:Linq-AI-Research/Linq-Embed-Mistral \\
          --tasks SciFact NFCorpus --dry-run
      linq-eval explain runs/new --reference runs/old --candidates eos dtype=float32
    """
    from linq_eval.run.explain import explain, render_explanation

    if output_format not in _FORMATS:
        raise ConfigError(f"Unknown --format {output_format!r}; use {', '.join(_FORMATS)}.")
    found = explain(
        run,
        reference,
        benchmark=benchmark,
        tasks=tasks or None,
        task_types=task_types or None,
        tolerance=tolerance,
        candidates=candidates or (),
        data_dir=Path(data_dir) if data_dir else None,
        cache_dir=Path(cache_dir) if cache_dir else None,
        dry_run=dry_run,
        tokens_per_s=tokens_per_s,
        echo=lambda line: typer.echo(line, err=True),
    )
    typer.echo(render_explanation(found, output_format), nl=False)
    if not found.passed:
        raise typer.Exit(EXIT_FAIL)


__all__: list[str] = []
