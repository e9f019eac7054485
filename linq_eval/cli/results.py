"""``linq-eval table`` and ``compare``."""

from __future__ import annotations

import typer

from linq_eval.cli.app import EXIT_FAIL, ListOptionsCommand, app
from linq_eval.cli.options import BENCHMARK_DEFAULT_OPT, RESULT_TASKS_OPT, TASK_TYPES_OPT
from linq_eval.results.compare import COMPARE_FORMATS, DEFAULT_ALPHA, DEFAULT_TOLERANCE, GATES
from linq_eval.results.per_query import DEFAULT_WORST


@app.command("table", cls=ListOptionsCommand)
def _table_command(
    folders: list[str] | None = typer.Argument(
        None,
        metavar="[FOLDER]...",
        help="Result folders: `run --output` folders, mteb result folders, or shipped "
        "baselines (published:<org/model>).",
    ),
    baselines: list[str] | None = typer.Option(
        None, "--baselines", help="Add a shipped baseline set (published, published-v2)."
    ),
    remote: list[str] | None = typer.Option(
        None,
        "--remote",
        help="Add ORG/MODEL[@REVISION] from mteb's results repository (downloads it).",
    ),
    benchmark: str = BENCHMARK_DEFAULT_OPT,
    tasks: list[str] | None = RESULT_TASKS_OPT,
    task_types: list[str] | None = TASK_TYPES_OPT,
    output_format: str = typer.Option(
        "markdown", "--format", help="markdown, csv, json, latex or html."
    ),
    per_task: bool = typer.Option(False, "--per-task", help="Also show every task's score."),
    output: str | None = typer.Option(None, "--output", help="Write to FILE instead of stdout."),
    reference: str | None = typer.Option(
        None, "--reference", help="Row to show deltas against (label or org/model)."
    ),
    decimals: int = typer.Option(2, "--round", help="Decimals (1 gives the card's format)."),
    sort: str = typer.Option("input", "--sort", help="Row order: input, average or retrieval."),
) -> None:
    """Leaderboard table of result folders and baselines: the card's columns, type means,
    Mean(TaskType), and optionally every task. Missing tasks show as "—"; a mean over an
    incomplete set shows its coverage, e.g. 59.80 (14/15). --tasks / --task-types table
    part of the benchmark, each task as the benchmark scores it (give FOLDERs before them).
    A run of a model that a baseline row also has (the same org/model) sits right after that
    row, followed by a "Δ vs <published>" row (the difference in every mean, over the tasks
    both have) and a per-task table of both scores and their difference.

    \b
    Examples:
      linq-eval table --baselines published --round 1          # the card's table
      linq-eval table --baselines published-v2 --benchmark "MTEB(eng, v2)"   # leaderboard today
      linq-eval table runs/linq --baselines published \\
          --reference published:Linq-AI-Research/Linq-Embed-Mistral
      linq-eval table runs/qwen3 --baselines published-v2 --benchmark "MTEB(eng, v2)"
      linq-eval table runs/linq --baselines published --task-types Retrieval
      linq-eval table runs/linq --per-task --format csv --output scores.csv
      linq-eval table runs/linq --baselines published --format html --output report.html
      linq-eval table --remote intfloat/e5-mistral-7b-instruct   # needs internet
    """
    from linq_eval.atomic import atomic_write_text
    from linq_eval.results.reading import load_baselines, resolve
    from linq_eval.results.render import render
    from linq_eval.results.tables import build_table
    from linq_eval.writable import require_writable_file

    if output:
        require_writable_file(output, "--output")
    specs = [*(folders or []), *(f"remote:{spec}" for spec in remote or [])]
    sets = [rs for spec in specs for rs in resolve(spec)]
    for name in baselines or []:
        sets += load_baselines(name)
    table = build_table(
        sets, benchmark, reference=reference, sort=sort, tasks=tasks, task_types=task_types
    )
    text = render(table, output_format, per_task=per_task, decimals=decimals)
    if output:
        atomic_write_text(output, text)
        typer.echo(f"wrote {output}", err=True)
    else:
        typer.echo(text, nl=False)


@app.command("compare", cls=ListOptionsCommand)
def _compare_command(
    ctx: typer.Context,
    run: str = typer.Argument(
        ..., metavar="RUN", help="Run folder (what `linq-eval run --output` writes)."
    ),
    reference: str = typer.Option(
        ...,
        "--reference",
        help="Reference folder or shipped baseline (published:<org/model>).",
    ),
    task_types: list[str] | None = TASK_TYPES_OPT,
    tasks: list[str] | None = RESULT_TASKS_OPT,
    tolerance: float = typer.Option(
        DEFAULT_TOLERANCE, "--tolerance", help="Largest allowed drop per task, in points x100."
    ),
    output_format: str = typer.Option("text", "--format", help=f"{', '.join(COMPARE_FORMATS)}."),
    allow_drift: bool = typer.Option(
        False, "--allow-drift", help="Compare even if score-changing settings differ."
    ),
    allow_metric_change: bool = typer.Option(
        False,
        "--allow-metric-change",
        help="Gate also on tasks whose run has no field with the reference's computation "
        "(a file with only max_ap against a published cos_sim_ap).",
    ),
    benchmark: str = BENCHMARK_DEFAULT_OPT,
    per_query: bool = typer.Option(
        False,
        "--per-query",
        help="Per task that moved: the queries that lost most, up/down counts, a p-value "
        "(both sides need per-query evidence: runs keep it, baselines have none).",
    ),
    require_significant: bool = typer.Option(
        False,
        "--require-significant",
        help="A drop beyond --tolerance fails only when the paired test gives p < --alpha.",
    ),
    gate: str = typer.Option(
        "task",
        "--gate",
        help=f"What fails ({', '.join(GATES)}): a task's drop, the drop of the mean of the task "
        "scores over the tasks with per-query evidence, or either.",
    ),
    alpha: float = typer.Option(DEFAULT_ALPHA, "--alpha", help="Significance level of that test."),
    worst: int = typer.Option(
        DEFAULT_WORST, "--worst", help="Queries listed per task with --per-query."
    ),
) -> None:
    """Compare a run with a reference task by task and gate on it.

    Exit 0: no task falls more than --tolerance below the reference. Exit 1: a regression
    or a task missing from the run. Exit 2: unusable input (missing or malformed folder,
    damaged per-query evidence, unknown task, or settings drift on the compared tasks without
    --allow-drift). Default tasks: every benchmark
    task the reference has a score for. The run is read in the computation the reference was
    made with (cosine_ap against a published cos_sim_ap); tasks where it has none are shown as
    "metric changed" and not gated unless --allow-metric-change. With --per-query (runs keep
    per-query evidence of retrieval tasks), each task that moved lists the queries that lost
    most and a paired permutation test, and the suite of those tasks its mean over tasks (as
    the leaderboard averages) with a task-stratified permutation test; --require-significant
    then fails a drop beyond --tolerance only when p < --alpha ("not significant" otherwise).
    --gate suite gates on the suite's mean instead of each task's (50 queries a task rarely
    show a 1-point drop; a 13-task suite's 649 do), --gate both on either.

    \b
    Examples:
      linq-eval compare runs/ci --reference published:Linq-AI-Research/Linq-Embed-Mistral \\
          --tasks SciFact NFCorpus --tolerance 0.5
      linq-eval compare runs/new --reference runs/old --task-types Retrieval --format markdown
      linq-eval compare runs/new --reference runs/old --allow-drift --format json
      linq-eval compare runs/new --reference runs/old --per-query --require-significant
      linq-eval compare runs/new --reference runs/old --benchmark NanoBEIR \\
          --require-significant --gate suite                # the NanoBEIR gate
      linq-eval compare copied-results --reference published:Linq-AI-Research/Linq-Embed-Mistral \\
          --task-types PairClassification --allow-metric-change
    """
    from linq_eval.results.compare import check_options, compare, render_comparison

    check_options(tolerance=tolerance, alpha=alpha, fmt=output_format, gate=gate)
    options = {k: v for k, v in ctx.params.items() if k != "output_format"}
    result = compare(**{**options, "tasks": tasks or None, "task_types": task_types or None})
    typer.echo(render_comparison(result, output_format), nl=False)
    if not result.passed:
        raise typer.Exit(EXIT_FAIL)


@app.command("export")
def _export_command(
    run: str = typer.Argument(
        ...,
        metavar="RUN",
        help="Run folder (what `linq-eval run --output` writes) or one of its "
        "<org__model>/<revision> folders.",
    ),
    to: str = typer.Option(
        ..., "--to", help="Folder to write into: DIR/results/<org__model>/<revision>/."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Export a run that is not a reproduction (local data, changed settings, mixed "
        "folder), writing what differs into run_settings.jsonl and model_meta.json.",
    ),
) -> None:
    """Export a run for mteb's results repository (github.com/embeddings-benchmark/results,
    the leaderboard's data): mteb's result files, model_meta.json and run_settings.jsonl in
    the repository's layout, checked by loading them back with mteb's ResultCache. Refuses a
    run without a model revision or model_meta.json, a run that is not a reproduction of the
    hub data with its profile's settings (--data-dir, changed settings, mixed folder) unless
    --force, and a --to folder that already holds other results for the same model and
    revision.

    \b
    Examples:
      linq-eval export runs/linq --to submission
      linq-eval export runs/local-data --to submission --force   # differences in the metadata
      cp -r submission/results/* ../results/results/   # in your fork of the results repository
    """
    from linq_eval.results.export import export_run

    for model in export_run(run, to, force=force):
        typer.echo(f"{model.model}@{model.revision}: {len(model.scores)} tasks -> {model.folder}")
    typer.echo(f"checked: mteb.ResultCache({to!r}).load_results() reads every score back")


__all__: list[str] = []
