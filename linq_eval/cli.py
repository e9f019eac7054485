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


# --- bench (linq_eval.bench) ---


@app.command("bench")
def bench_command(
    model: str | None = typer.Option(
        None, "--model", help="Profile name, hub id or local path (instead of --random-init)."
    ),
    random_init: str | None = typer.Option(
        None, "--random-init", help="Random weights of a named size: mistral-7b or tiny."
    ),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, bfloat16, float16 or float32."),
    max_length: int = typer.Option(512, "--max-length", help="Tokens per input."),
    n_texts: int = typer.Option(2000, "--n-texts", help="Texts in the length mix."),
    token_budget: int | None = typer.Option(
        None,
        "--token-budget",
        help="Tokens per forward pass (default: largest that fits on CUDA, 8192 on CPU).",
    ),
    mix: str = typer.Option("both", "--mix", help="scifact, synthetic or both."),
    repeats: int = typer.Option(3, "--repeats", help="Timed passes per way (medians)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the mix and the random weights."),
    naive_batch_size: int = typer.Option(16, "--naive-batch-size", help="Naive recipe batch."),
    st_batch_size: int = typer.Option(32, "--st-batch-size", help="SentenceTransformer batch."),
    ways: list[str] | None = typer.Option(  # noqa: B008 - typer idiom
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
    import platform
    from pathlib import Path

    from linq_eval.bench import (
        WAYS,
        BenchConfig,
        format_ablation,
        format_table,
        run_ablation,
        run_bench,
    )

    config = BenchConfig(
        model=model,
        random_init=random_init if random_init or model else "tiny",
        device=device,
        dtype=dtype,
        max_length=max_length,
        n_texts=n_texts,
        mix=mix,
        seed=seed,
        token_budget=token_budget,
        repeats=repeats,
        naive_batch_size=naive_batch_size,
        st_batch_size=st_batch_size,
        ways=tuple(ways) if ways else WAYS,
        attention=attention,
        threads=threads,
    )
    if ablation:
        result = run_ablation(config)
        text = format_ablation(result)
    else:
        result = run_bench(config)
        text = format_table(result)
    result["command"] = " ".join(["linq-eval", *sys.argv[1:]]) if sys.argv else None
    result["host"] = platform.node()
    typer.echo(text)
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        typer.echo(f"wrote {json_path}", err=True)


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


# --- run, plan, prefetch (linq_eval.runner, linq_eval.plan, linq_eval.prefetch) ---


class _RunCommand(_ListOptionsCommand):
    """``--tasks A B``, ``--task-types A B`` and ``--devices 0 1`` take several values; the
    arguments as given are kept for relaunching under torchrun."""

    list_options = ("--tasks", "--task-types", "--devices")

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        ctx.meta["linq_eval_args"] = list(args)
        return super().parse_args(ctx, args)


_MODEL_OPT = typer.Option(
    "linq-embed-mistral", "--model", help="Profile name, hub id (org/name) or model directory."
)
_REVISION_OPT = typer.Option(
    None, "--revision", help="Model revision (default: the profile's pin)."
)
_BENCHMARK_OPT = typer.Option(
    None, "--benchmark", help="mteb benchmark (default: MTEB(eng, v1) when --tasks is not given)."
)
_TASKS_OPT = typer.Option(None, "--tasks", help="Exact mteb task names: repeat, or list after it.")
_TASK_TYPES_OPT = typer.Option(
    None, "--task-types", help="Keep only these task types of the benchmark (Retrieval STS ...)."
)
_MAX_LENGTH_OPT = typer.Option(None, "--max-length", help="Tokens per input (default: profile's).")
_DTYPE_OPT = typer.Option(None, "--dtype", help="auto, bfloat16, float16 or float32.")
_POLICY_OPT = typer.Option(None, "--policy", help="Instruction policy: e5, mteb or none.")
_INSTRUCTIONS_OPT = typer.Option(
    None, "--instructions", help="Instruction set name (task_instructions/) or YAML path."
)
_OUTPUT_OPT = typer.Option(
    "results", "--output", help="Output folder (mteb's results/ tree, run record, cache)."
)
_DATA_DIR_OPT = typer.Option(
    None, "--data-dir", help="Local task data, one folder per task (see linq_eval.local_data)."
)
_SHARD_OPT = typer.Option(
    None, "--shard", metavar="INDEX/COUNT", help="Run job INDEX of COUNT (1-based), e.g. 2/4."
)
_RANDOM_OPT = typer.Option(
    None, "--random-init", help="Randomly initialised Mistral of this size (tiny, mistral-7b)."
)
_TPS_OPT = typer.Option(
    20000.0, "--tokens-per-s", help="Throughput assumed for the GPU-hours estimate."
)


def _run_config(**options: object) -> object:
    from pathlib import Path

    from linq_eval.plan import Shard
    from linq_eval.runner import RunConfig

    shard = options.pop("shard", None)
    for key in ("output", "data_dir", "cache_dir"):
        if options.get(key) is not None:
            options[key] = Path(str(options[key]))
    options["tasks"] = tuple(options.get("tasks") or ())
    options["task_types"] = tuple(options.get("task_types") or ())
    return RunConfig(shard=Shard.parse(str(shard)) if shard else None, **options)  # type: ignore[arg-type]


@app.command("run", cls=_RunCommand)
def run_command(
    ctx: typer.Context,
    model: str = _MODEL_OPT,
    revision: str | None = _REVISION_OPT,
    benchmark: str | None = _BENCHMARK_OPT,
    tasks: list[str] | None = _TASKS_OPT,
    task_types: list[str] | None = _TASK_TYPES_OPT,
    max_length: int | None = _MAX_LENGTH_OPT,
    dtype: str | None = _DTYPE_OPT,
    policy: str | None = _POLICY_OPT,
    instructions: str | None = _INSTRUCTIONS_OPT,
    output: str = _OUTPUT_OPT,
    data_dir: str | None = _DATA_DIR_OPT,
    cache_dir: str | None = typer.Option(
        None, "--cache-dir", help="Embedding cache folder (default: OUTPUT/embeddings)."
    ),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Keep embeddings on disk."),
    chunk_texts: int = typer.Option(
        2048, "--chunk-texts", help="Texts per saved chunk: a kill loses at most one chunk."
    ),
    shard: str | None = _SHARD_OPT,
    devices: list[str] | None = typer.Option(  # noqa: B008 - typer idiom
        None, "--devices", help="GPUs to use, e.g. 0 1 2 3: starts torchrun (cpu cpu: 2 CPU procs)."
    ),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda or cuda:N (one process)."),
    token_budget: int | None = typer.Option(
        None, "--token-budget", help="Padded tokens per batch (default: 65536 on GPU)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan and stop."),
    tokens_per_s: float = _TPS_OPT,
    random_init: str | None = _RANDOM_OPT,
    allow_settings_change: bool = typer.Option(
        False, "--allow-settings-change", help="Add to a folder recorded with other settings."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
) -> None:
    """Evaluate a model on a benchmark's tasks: resumable, cached, sharded, multi-GPU.

    Results go to OUTPUT/results/<org__model>/<revision>/<Task>.json (mteb's layout) with
    linq_eval_run.json beside them. Rerun the same command to resume: finished tasks are
    skipped and the embedding cache (OUTPUT/embeddings) keeps finished chunks of the task
    that was interrupted. Exit 1 if a task failed, 2 for unusable options.

    \b
    Examples:
      linq-eval run                                          # Linq-Embed-Mistral, MTEB(eng, v1)
      linq-eval run --model all-minilm-l6-v2 --tasks SciFact STSBenchmark \\
          Banking77Classification --data-dir ../shared/data --output runs/minilm
      linq-eval run --task-types Retrieval --devices 0 1 2 3 4 5 6 7
      linq-eval run --shard 2/4 --output /shared/runs/linq   # job 2 of 4 (scripts/slurm_array.sh)
      linq-eval run --dry-run                                # tasks, sizes, GPU-hours
    """
    from linq_eval import distributed
    from linq_eval.plan import render_plan
    from linq_eval.runner import format_summary, prepare, run_suite

    config = _run_config(
        model=model,
        revision=revision,
        benchmark=benchmark,
        tasks=tasks,
        task_types=task_types,
        max_length=max_length,
        dtype=dtype,
        policy=policy,
        instructions=instructions,
        output=output,
        data_dir=data_dir,
        cache_dir=cache_dir,
        use_cache=cache,
        chunk_texts=chunk_texts,
        shard=shard,
        device=device,
        token_budget=token_budget,
        dry_run=dry_run,
        tokens_per_s=tokens_per_s,
        random_init=random_init,
        allow_settings_change=allow_settings_change,
        progress=progress,
    )
    if devices:
        from linq_eval.errors import ConfigError

        if device is not None:
            raise ConfigError("Give --devices (several processes) or --device (one), not both.")
        distributed.parse_devices(devices)
        prepare(config)  # option, task and instruction errors show here, once
        args = distributed.strip_option(ctx.meta.get("linq_eval_args", []), "--devices")
        raise typer.Exit(distributed.launch(devices, ["run", *args]))
    if dry_run:
        typer.echo(render_plan(prepare(config).plan), nl=False)
        return
    summary = run_suite(config, echo=typer.echo)  # type: ignore[arg-type]
    group = distributed.current()
    if group is None or group.is_main:
        typer.echo(format_summary(summary), nl=False)
    distributed.shutdown()
    if summary.failed:
        raise typer.Exit(1)


@app.command("plan", cls=_RunCommand)
def plan_command(
    model: str = _MODEL_OPT,
    revision: str | None = _REVISION_OPT,
    benchmark: str | None = _BENCHMARK_OPT,
    tasks: list[str] | None = _TASKS_OPT,
    task_types: list[str] | None = _TASK_TYPES_OPT,
    max_length: int | None = _MAX_LENGTH_OPT,
    policy: str | None = _POLICY_OPT,
    instructions: str | None = _INSTRUCTIONS_OPT,
    output: str = _OUTPUT_OPT,
    shard: str | None = _SHARD_OPT,
    tokens_per_s: float = _TPS_OPT,
    random_init: str | None = _RANDOM_OPT,
    output_format: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """Show what a run would do, without loading a model: its tasks, their texts and
    estimated tokens (from mteb's descriptive statistics), what OUTPUT already holds, and the
    GPU-hours at --tokens-per-s.

    \b
    Examples:
      linq-eval plan                                  # the full MTEB(eng, v1) suite
      linq-eval plan --tokens-per-s 35000 --max-length 512
      linq-eval plan --task-types Retrieval --shard 1/4
      linq-eval plan --tasks SciFact NFCorpus --output runs/linq --format json
    """
    from linq_eval.errors import ConfigError
    from linq_eval.plan import render_plan
    from linq_eval.runner import plan_run

    if output_format not in ("table", "json"):
        raise ConfigError(f"Unknown --format {output_format!r}; use table or json.")
    config = _run_config(
        model=model,
        revision=revision,
        benchmark=benchmark,
        tasks=tasks,
        task_types=task_types,
        max_length=max_length,
        policy=policy,
        instructions=instructions,
        output=output,
        shard=shard,
        tokens_per_s=tokens_per_s,
        random_init=random_init,
    )
    plan = plan_run(config)  # type: ignore[arg-type]
    if output_format == "json":
        typer.echo(json.dumps(plan.as_dict(), indent=2))
    else:
        typer.echo(render_plan(plan), nl=False)


@app.command("prefetch", cls=_RunCommand)
def prefetch_command(
    model: str = _MODEL_OPT,
    revision: str | None = _REVISION_OPT,
    benchmark: str | None = _BENCHMARK_OPT,
    tasks: list[str] | None = _TASKS_OPT,
    task_types: list[str] | None = _TASK_TYPES_OPT,
    data_dir: str | None = _DATA_DIR_OPT,
    check: bool = typer.Option(
        False,
        "--check",
        help="Only look (offline) for what is cached; exit 1 if anything is missing.",
    ),
    no_model: bool = typer.Option(False, "--no-model", help="Datasets only."),
) -> None:
    """Download a suite's datasets and the model into the Hugging Face cache, so that compute
    nodes can run with HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 (share the cache via HF_HOME).

    \b
    Examples:
      linq-eval prefetch                                     # MTEB(eng, v1) + Linq-Embed-Mistral
      linq-eval prefetch --tasks SciFact NFCorpus --model all-minilm-l6-v2
      HF_HUB_OFFLINE=1 linq-eval prefetch --check            # on the compute node
    """
    from linq_eval.plan import select_tasks
    from linq_eval.prefetch import prefetch
    from linq_eval.runner import resolve_profile

    config = _run_config(
        model=model,
        revision=revision,
        benchmark=benchmark,
        tasks=tasks,
        task_types=task_types,
        data_dir=data_dir,
    )
    config.check()  # type: ignore[attr-defined]
    selected = select_tasks(benchmark, tuple(tasks or ()), tuple(task_types or ()))
    profile = None if no_model else resolve_profile(config)  # type: ignore[arg-type]
    items = prefetch(selected, profile, data_dir=config.data_dir, check=check, echo=typer.echo)  # type: ignore[attr-defined]
    bad = [i for i in items if i.status in ("missing", "failed")]
    typer.echo(
        f"# {len(items) - len(bad)} of {len(items)} ready"
        + ("" if not bad else f", {len(bad)} not")
    )
    if bad:
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
