"""``linq-eval instructions`` and ``validate-instructions``."""

from __future__ import annotations

import json

import typer

from linq_eval.benchmarks import DEFAULT_BENCHMARK, expanded_names, select_tasks
from linq_eval.cli.app import app
from linq_eval.cli.options import POLICY_HELP
from linq_eval.errors import ConfigError, LinqEvalError
from linq_eval.prompts.builder import (
    instruction_set_hash,
    prompts_with_hashes,
    task_types,
    tasks_prompt_hash,
)
from linq_eval.prompts.instruction_sets import (
    available_instruction_sets,
    load_instruction_set,
    validate_instruction_file,
)
from linq_eval.prompts.policies import get_policy


@app.command("instructions")
def _instructions_command(
    task_args: list[str] | None = typer.Argument(
        None, metavar="[TASK]...", help="Task names (same as --tasks)."
    ),
    benchmark: str | None = typer.Option(
        None,
        "--benchmark",
        help=f"mteb benchmark whose tasks to show (default: {DEFAULT_BENCHMARK}).",
    ),
    tasks: list[str] | None = typer.Option(
        None, "--tasks", help="Exact mteb task name; repeat, or list names after it."
    ),
    policy: str = typer.Option("e5", "--policy", help=POLICY_HELP),
    instruction_set: str = typer.Option(
        "e5", "--instructions", help="Instruction set name (task_instructions/) or YAML path."
    ),
    output_format: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """Show the exact prefix that each task's queries and documents receive.

    A task the set has no entry for takes the instruction of the task it derives from (mteb's
    adapted_from: NanoSciFactRetrieval takes SciFact's); the "from" column names it. JSON
    output is {task: {"query": prefix, "document": prefix, "instruction_from": task,
    "prompt_hash": hash}}; "" means no prefix, and prompt_hash is the hash a run of the task
    with this policy and instruction set records in its run record (linq_eval/run.json).

    \b
    Examples:
      linq-eval instructions                     # MTEB(eng, v1), policy e5
      linq-eval instructions --format json --policy mteb --instructions mteb-v2
      linq-eval instructions --tasks SciFact STS12
      linq-eval instructions --tasks SciFact --tasks STS12
      linq-eval instructions SciDocsRR --policy mteb
      linq-eval instructions --benchmark NanoBEIR         # each inherited, and from which task
    """
    if output_format not in ("table", "json"):
        raise ConfigError(f"Unknown --format {output_format!r}; use table or json.")
    pol = get_policy(policy)
    iset = load_instruction_set(instruction_set)
    selected = select_tasks(benchmark, [*(tasks or []), *(task_args or [])])
    prompts = prompts_with_hashes(selected, pol, iset)
    if output_format == "json":
        typer.echo(json.dumps(prompts, indent=2, ensure_ascii=False))
        return
    names = list(prompts)
    types = task_types(names)
    typer.echo(
        f"# instructions {iset.name} {iset.version} ({iset.path}); policy {pol.name}; "
        f"prompt_hash {tasks_prompt_hash(expanded_names(selected), pol, iset)} (all tasks)"
    )
    typer.echo(f"# prefix = template {json.dumps(iset.template)} with the instruction filled in")
    width = max(len(n) for n in names)
    # The "from" column: own, the task it inherits from, or - (not instructed).
    origin = {n: prompts[n]["instruction_from"] for n in names}
    sources = {n: "-" if o is None else "own" if o == n else o for n, o in origin.items()}
    wide = max(len(s) for s in ["from", *sources.values()])
    typer.echo(
        f"{'task':{width}}  {'type':18}  query  document  {'from':{wide}}  "
        f"{'prompt_hash':16}  instruction"
    )
    for name in names:
        query, document = prompts[name]["query"], prompts[name]["document"]
        shown = json.dumps(iset.get(name), ensure_ascii=False) if query or document else "-"
        typer.echo(
            f"{name:{width}}  {types[name]:18}  {'yes' if query else 'no':5}  "
            f"{'yes' if document else 'no':8}  {sources[name]:{wide}}  "
            f"{prompts[name]['prompt_hash']}  {shown}"
        )


@app.command("validate-instructions")
def _validate_instructions_command(
    sets: list[str] | None = typer.Argument(
        None, metavar="[NAME_OR_PATH]...", help="Sets to check (default: every named set)."
    ),
    benchmark: str = typer.Option(
        DEFAULT_BENCHMARK, "--benchmark", help="Benchmark every task of which must be covered."
    ),
    coverage: bool = typer.Option(True, "--coverage/--no-coverage", help="Check coverage."),
) -> None:
    """Check instruction YAML files without running a model.

    Lists every problem of each file with its line number, then missing benchmark tasks.
    Each valid set is shown with its fingerprint (a hash of its template and strings).

    \b
    Examples:
      linq-eval validate-instructions
      linq-eval validate-instructions ./my_instructions.yaml --no-coverage
      linq-eval validate-instructions e5 --benchmark "MTEB(eng, v2)"
    """
    failures: list[str] = []
    for item in sets or available_instruction_sets():
        try:
            iset = validate_instruction_file(item, benchmark if coverage else None)
        except LinqEvalError as exc:
            failures.append(str(exc))  # it names the file
            typer.echo(f"FAIL {item}", err=True)
            continue
        covered = f", covers {benchmark}" if coverage else ""
        typer.echo(
            f"ok   {iset.name} {iset.version}: {len(iset.instructions)} tasks, "
            f"fingerprint {instruction_set_hash(iset)}{covered}"
        )
    if failures:
        raise ConfigError("\n".join(failures))


__all__: list[str] = []
