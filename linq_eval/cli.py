"""The ``linq-eval`` command line: a thin typer layer, each command calling one library function.

Run ``linq-eval --help`` for the list of commands and ``linq-eval COMMAND --help`` for examples.
"""

from __future__ import annotations

import json
import sys

import typer

from linq_eval.errors import LinqEvalError

app = typer.Typer(
    name="linq-eval",
    help="Evaluate instruction-tuned decoder embedding models (Linq-Embed-Mistral) on MTEB.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Evaluate instruction-tuned decoder embedding models (Linq-Embed-Mistral) on MTEB."""


@app.command("profiles")
def profiles_command(
    output_format: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """List the model profiles and the settings each one fixes.

    Example: linq-eval profiles --format json
    """
    from linq_eval.profiles import PROFILES

    if output_format == "json":
        typer.echo(json.dumps({k: p.as_dict() for k, p in PROFILES.items()}, indent=2))
        return
    for p in PROFILES.values():
        typer.echo(
            f"{p.name:24} {p.pooling:5} policy={p.policy:5} max_length={p.max_length:<5} "
            f"{p.model}  - {p.description}"
        )


# --- commands added by other modules below (keep one section per module) ---


# --- instructions (linq_eval.instructions) ---


@app.command("instructions")
def instructions_command(
    task_args: list[str] | None = typer.Argument(  # noqa: B008 - typer idiom
        None, metavar="[TASK]...", help="Task names (same as --tasks)."
    ),
    benchmark: str | None = typer.Option(
        None, "--benchmark", help="mteb benchmark whose tasks to show (default: MTEB(eng, v1))."
    ),
    tasks: list[str] | None = typer.Option(  # noqa: B008 - typer idiom
        None, "--tasks", help="Exact mteb task name; repeat, or list names after it."
    ),
    policy: str = typer.Option("e5", "--policy", help="Instruction policy: e5, mteb or none."),
    instruction_set: str = typer.Option(
        "e5", "--instructions", help="Instruction set name (task_instructions/) or YAML path."
    ),
    output_format: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """Show the exact prefix that each task's queries and documents receive.

    JSON output is {task: {"query": prefix, "document": prefix}}; "" means no prefix.

    \b
    Examples:
      linq-eval instructions                     # MTEB(eng, v1), policy e5
      linq-eval instructions --format json --policy mteb --instructions mteb-v2
      linq-eval instructions --tasks SciFact STS12
      linq-eval instructions --tasks SciFact --tasks STS12
      linq-eval instructions SciDocsRR --policy mteb
    """
    from linq_eval.errors import ConfigError
    from linq_eval.instructions import (
        load_instruction_set,
        resolve_benchmark_tasks,
        task_prompts,
        task_types,
    )
    from linq_eval.policies import get_policy

    if output_format not in ("table", "json"):
        raise ConfigError(f"Unknown --format {output_format!r}; use table or json.")
    pol = get_policy(policy)
    iset = load_instruction_set(instruction_set)
    names = resolve_benchmark_tasks(benchmark, [*(tasks or []), *(task_args or [])] or None)
    prompts = task_prompts(names, pol, iset)
    if output_format == "json":
        typer.echo(json.dumps(prompts, indent=2, ensure_ascii=False))
        return
    types = task_types(names)
    used = names if pol.instruct else []
    typer.echo(
        f"# instructions {iset.name} {iset.version} ({iset.path}); policy {pol.name}; "
        f"prompt_hash {iset.prompt_hash(used)}"
    )
    typer.echo(f"# prefix = template {json.dumps(iset.template)} with the instruction filled in")
    width = max(len(n) for n in names)
    typer.echo(f"{'task':{width}}  {'type':18}  query  document  instruction")
    for name in names:
        query, document = prompts[name]["query"], prompts[name]["document"]
        shown = json.dumps(iset.get(name), ensure_ascii=False) if query or document else "-"
        typer.echo(
            f"{name:{width}}  {types[name]:18}  {'yes' if query else 'no':5}  "
            f"{'yes' if document else 'no':8}  {shown}"
        )


@app.command("validate-instructions")
def validate_instructions_command(
    sets: list[str] | None = typer.Argument(  # noqa: B008 - typer idiom
        None, metavar="[NAME_OR_PATH]...", help="Sets to check (default: every named set)."
    ),
    benchmark: str = typer.Option(
        "MTEB(eng, v1)", "--benchmark", help="Benchmark every task of which must be covered."
    ),
    coverage: bool = typer.Option(True, "--coverage/--no-coverage", help="Check coverage."),
) -> None:
    """Check instruction YAML files without running a model.

    Lists every problem of each file with its line number, then missing benchmark tasks.

    \b
    Examples:
      linq-eval validate-instructions
      linq-eval validate-instructions ./my_instructions.yaml --no-coverage
      linq-eval validate-instructions e5 --benchmark "MTEB(eng, v2)"
    """
    from linq_eval.errors import ConfigError
    from linq_eval.instructions import available_instruction_sets, validate_instruction_file

    failures: list[str] = []
    for item in sets or available_instruction_sets():
        try:
            iset = validate_instruction_file(item, benchmark if coverage else None)
        except LinqEvalError as exc:
            failures.append(f"{item}: {exc}")
            typer.echo(f"FAIL {item}", err=True)
            continue
        covered = f", covers {benchmark}" if coverage else ""
        typer.echo(
            f"ok   {iset.name} {iset.version}: {len(iset.instructions)} tasks, "
            f"prompt_hash {iset.prompt_hash()}{covered}"
        )
    if failures:
        raise ConfigError("\n".join(failures))


# --- tables and compare (linq_eval.tables, linq_eval.report, linq_eval.compare) ---


class _ListOptionsCommand(typer.core.TyperCommand):
    """Lets ``--tasks A B C`` stand for ``--tasks A --tasks B --tasks C`` (give RUN first)."""

    list_options = ("--tasks", "--task-types")

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        expanded: list[str] = []
        current: str | None = None
        for arg in args:
            if arg.startswith("-"):
                current = arg if arg in self.list_options else None
                expanded.append(arg)
            elif current is not None and expanded[-1] != current:
                expanded += [current, arg]
            else:
                expanded.append(arg)
        return super().parse_args(ctx, expanded)


@app.command("table")
def table_command(
    folders: list[str] | None = typer.Argument(  # noqa: B008 - typer idiom
        None,
        metavar="[FOLDER]...",
        help="Result folders: `run --output` folders, mteb result folders, or shipped "
        "baselines (published:<org/model>).",
    ),
    baselines: list[str] | None = typer.Option(  # noqa: B008 - typer idiom
        None, "--baselines", help="Add a shipped baseline set (published)."
    ),
    remote: list[str] | None = typer.Option(  # noqa: B008 - typer idiom
        None,
        "--remote",
        help="Add ORG/MODEL[@REVISION] from mteb's results repository (downloads it).",
    ),
    benchmark: str = typer.Option("MTEB(eng, v1)", "--benchmark", help="mteb benchmark."),
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
    incomplete set shows its coverage, e.g. 59.80 (14/15).

    \b
    Examples:
      linq-eval table --baselines published --round 1          # the card's table
      linq-eval table runs/linq --baselines published --reference published:Linq-AI-Research/Linq-Embed-Mistral
      linq-eval table runs/linq --per-task --format csv --output scores.csv
      linq-eval table runs/linq --baselines published --format html --output report.html
      linq-eval table --remote intfloat/e5-mistral-7b-instruct   # needs internet
    """
    from pathlib import Path

    from linq_eval.results_io import load_baselines, load_remote, resolve
    from linq_eval.tables import build_table, render

    sets = []
    for folder in folders or []:
        sets += resolve(folder)
    for spec in remote or []:
        model, _, revision = spec.partition("@")
        sets += load_remote(model, revision or None)
    for name in baselines or []:
        sets += load_baselines(name)
    table = build_table(sets, benchmark, reference=reference, sort=sort)
    text = render(table, output_format, per_task=per_task, decimals=decimals)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)
    else:
        typer.echo(text, nl=False)


@app.command("compare", cls=_ListOptionsCommand)
def compare_command(
    run: str = typer.Argument(..., help="Run folder (what `linq-eval run --output` writes)."),
    reference: str = typer.Option(
        ...,
        "--reference",
        help="Reference folder or shipped baseline (published:<org/model>).",
    ),
    task_types: list[str] | None = typer.Option(  # noqa: B008 - typer idiom
        None, "--task-types", help="Only these task types (Retrieval STS ...)."
    ),
    tasks: list[str] | None = typer.Option(  # noqa: B008 - typer idiom
        None, "--tasks", help="Only these tasks (exact mteb names)."
    ),
    tolerance: float = typer.Option(
        0.5, "--tolerance", help="Largest allowed drop per task, in points x100."
    ),
    output_format: str = typer.Option("text", "--format", help="text, json or markdown."),
    allow_drift: bool = typer.Option(
        False, "--allow-drift", help="Compare even if score-changing settings differ."
    ),
    benchmark: str = typer.Option("MTEB(eng, v1)", "--benchmark", help="mteb benchmark."),
) -> None:
    """Compare a run with a reference task by task and gate on it.

    Exit 0: no task falls more than --tolerance below the reference. Exit 1: a regression
    or a task missing from the run. Exit 2: unusable input (missing or malformed folder,
    unknown task, or settings drift without --allow-drift). Default tasks: every benchmark
    task the reference has a score for.

    \b
    Examples:
      linq-eval compare runs/ci --reference published:Linq-AI-Research/Linq-Embed-Mistral \\
          --tasks SciFact NFCorpus --tolerance 0.5
      linq-eval compare runs/new --reference runs/old --task-types Retrieval --format markdown
      linq-eval compare runs/new --reference runs/old --allow-drift --format json
    """
    from linq_eval.compare import compare, render_comparison

    result = compare(
        run,
        reference,
        benchmark=benchmark,
        task_types=task_types or None,
        tasks=tasks or None,
        tolerance=tolerance,
        allow_drift=allow_drift,
    )
    typer.echo(render_comparison(result, output_format), nl=False)
    if not result.passed:
        raise typer.Exit(1)


def main() -> None:
    """Console entry point: user errors print one clear line and exit 2."""
    try:
        app()
    except LinqEvalError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
