"""``linq-eval run``, ``plan`` and ``prefetch``."""

from __future__ import annotations

import json

import typer

from linq_eval.benchmarks import select
from linq_eval.cli.app import EXIT_FAIL, RunCommand, app
from linq_eval.cli.options import (
    DATA_DIR_OPT,
    DTYPE_OPT,
    EOS_OPT,
    INSTRUCTIONS_OPT,
    MAX_LENGTH_OPT,
    OUTPUT_OPT,
    POLICY_OPT,
    POOLING_OPT,
    RANDOM_OPT,
    SHARD_OPT,
    TPS_OPT,
    run_config,
    with_selection_options,
)
from linq_eval.defaults import DEFAULT_CHUNK_TEXTS, DEFAULT_TOKEN_BUDGET
from linq_eval.errors import ConfigError
from linq_eval.run.plan import render_plan
from linq_eval.run.preparation import plan_run, prepare


@app.command("run", cls=RunCommand)
@with_selection_options
def _run_command(
    ctx: typer.Context,
    max_length: int | None = MAX_LENGTH_OPT,
    dtype: str | None = DTYPE_OPT,
    policy: str | None = POLICY_OPT,
    instructions: str | None = INSTRUCTIONS_OPT,
    eos: str | None = EOS_OPT,
    pooling: str | None = POOLING_OPT,
    output: str = OUTPUT_OPT,
    data_dir: str | None = DATA_DIR_OPT,
    cache_dir: str | None = typer.Option(
        None, "--cache-dir", help="Embedding cache folder (default: OUTPUT/.linq_eval/embeddings)."
    ),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Keep embeddings on disk."),
    chunk_texts: int = typer.Option(
        DEFAULT_CHUNK_TEXTS,
        "--chunk-texts",
        help="Texts per saved chunk: a kill loses at most one chunk.",
    ),
    shard: str | None = SHARD_OPT,
    devices: list[str] | None = typer.Option(
        None, "--devices", help="GPUs to use, e.g. 0 1 2 3: starts torchrun (cpu cpu: 2 CPU procs)."
    ),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda or cuda:N (one process)."),
    token_budget: int | None = typer.Option(
        None,
        "--token-budget",
        help="Tokens per forward pass, padding included in padded mode (default: "
        f"{DEFAULT_TOKEN_BUDGET['cuda']} on GPU, fitted to its memory; "
        f"{DEFAULT_TOKEN_BUDGET['cpu']} on CPU, "
        "or max-length if longer).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan and stop."),
    tokens_per_s: float = TPS_OPT,
    random_init: str | None = RANDOM_OPT,
    allow_settings_change: bool = typer.Option(
        False, "--allow-settings-change", help="Add to a folder recorded with other settings."
    ),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Bars of the current encode call."
    ),
    quiet: bool = typer.Option(
        False, "--quiet", help="No progress output (CI logs): only a line per finished task."
    ),
    per_query: bool = typer.Option(
        True,
        "--per-query/--no-per-query",
        help="Keep each retrieval query's score and top-10 ids (for compare --per-query).",
    ),
) -> None:
    """Evaluate a model on a benchmark's tasks: resumable, cached, sharded, multi-GPU.

    Results go to OUTPUT/<org__model>/<revision>/<Task>.json (the layout of mteb's results
    repository) with linq_eval/run.json beside them, and per-query evidence
    (<Task>.queries.json.gz) for retrieval and reranking tasks. Progress: one line for the
    whole suite (tasks, tokens, tokens/s, ETA) on stderr. Rerun the same command to resume:
    finished tasks are skipped and the embedding cache (OUTPUT/.linq_eval/embeddings) keeps
    finished chunks of the task that was interrupted. Exit 1 if a task failed, 2 for
    unusable options. Each task runs as --benchmark scores it (STS17: en-en, test); a task
    named with --tasks that the benchmark lacks runs whole.

    \b
    Examples:
      linq-eval run                                          # Linq-Embed-Mistral, MTEB(eng, v1)
      linq-eval run --model all-minilm-l6-v2 --tasks SciFact STSBenchmark \\
          Banking77Classification --data-dir ../shared/data --output runs/minilm
      linq-eval run --model all-minilm-l6-v2 --benchmark "MTEB(eng, v1)" \\
          --tasks STS17 AmazonCounterfactualClassification --data-dir ../shared/data/more
      linq-eval run --task-types Retrieval --devices 0 1 2 3 4 5 6 7
      linq-eval run --shard 2/4 --output /shared/runs/linq   # job 2 of 4 (scripts/slurm_array.sh)
      linq-eval run --dry-run                                # tasks, sizes, GPU-hours
    """
    config = run_config(ctx.params, use_cache=cache, progress=progress and not quiet)
    prepared = prepare(config)  # options, names, instructions: checked before torch loads
    if dry_run:
        typer.echo(render_plan(prepared.plan), nl=False)
        return
    from linq_eval.run import distributed  # these load torch: lazily, see linq_eval.cli
    from linq_eval.run.runner import run_suite
    from linq_eval.run.summary import format_summary

    if devices:
        if device is not None:
            raise ConfigError("Give --devices (several processes) or --device (one), not both.")
        distributed.parse_devices(devices)
        args = distributed.strip_option(ctx.meta.get("linq_eval_args", []), "--devices")
        raise typer.Exit(distributed.launch(devices, ["run", *args]))
    summary = run_suite(config, echo=typer.echo, prepared=prepared)  # type: ignore[arg-type]
    group = distributed.current()
    if group is None or group.is_main:
        typer.echo(format_summary(summary), nl=False)
    distributed.shutdown()
    if summary.failed:
        raise typer.Exit(EXIT_FAIL)


@app.command("plan", cls=RunCommand)
@with_selection_options
def _plan_command(
    ctx: typer.Context,
    max_length: int | None = MAX_LENGTH_OPT,
    policy: str | None = POLICY_OPT,
    instructions: str | None = INSTRUCTIONS_OPT,
    output: str = OUTPUT_OPT,
    shard: str | None = SHARD_OPT,
    tokens_per_s: float = TPS_OPT,
    random_init: str | None = RANDOM_OPT,
    output_format: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """Show what a run would do, without loading a model: its tasks with their splits and
    language subsets (as --benchmark scores them; "whole task" for one it lacks), their texts and
    estimated tokens (from mteb's descriptive statistics), what OUTPUT already holds, and the
    GPU-hours at --tokens-per-s.

    \b
    Examples:
      linq-eval plan                                  # the full MTEB(eng, v1) suite
      linq-eval plan --tokens-per-s 35000 --max-length 512
      linq-eval plan --task-types Retrieval --shard 1/4
      linq-eval plan --tasks SciFact NFCorpus --output runs/linq --format json
    """
    if output_format not in ("table", "json"):
        raise ConfigError(f"Unknown --format {output_format!r}; use table or json.")
    plan = plan_run(run_config(ctx.params))
    if output_format == "json":
        typer.echo(json.dumps(plan.as_dict(), indent=2))
    else:
        typer.echo(render_plan(plan), nl=False)


@app.command("prefetch", cls=RunCommand)
@with_selection_options
def _prefetch_command(
    ctx: typer.Context,
    data_dir: str | None = DATA_DIR_OPT,
    check: bool = typer.Option(
        False,
        "--check",
        help="Only look (offline) for what is cached; exit 1 if anything is missing.",
    ),
    no_model: bool = typer.Option(False, "--no-model", help="Datasets only."),
) -> None:
    """Download a suite's datasets and the model into the Hugging Face cache, so that compute
    nodes can run with HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 (share the cache via HF_HOME).
    Each task is fetched as --benchmark scores it; a line says "whole task" for a named task
    the benchmark lacks (fetched and run with every subset and split).

    \b
    Examples:
      linq-eval prefetch                                     # MTEB(eng, v1) + Linq-Embed-Mistral
      linq-eval prefetch --tasks SciFact NFCorpus --model all-minilm-l6-v2
      HF_HUB_OFFLINE=1 linq-eval prefetch --check            # on the compute node
    """
    from linq_eval.run.config import resolve_profile
    from linq_eval.run.prefetch import prefetch  # loads torch: lazily, see linq_eval.cli

    config = run_config(ctx.params)
    config.check()  # type: ignore[attr-defined]
    selected = select(config.benchmark, config.tasks, config.task_types)  # type: ignore[attr-defined]
    profile = None if no_model else resolve_profile(config).profile  # type: ignore[arg-type]
    items = prefetch(selected, profile, data_dir=config.data_dir, check=check, echo=typer.echo)  # type: ignore[attr-defined]
    bad = [i for i in items if i.status in ("missing", "failed")]
    typer.echo(
        f"# {len(items) - len(bad)} of {len(items)} ready" + (f", {len(bad)} not" if bad else "")
    )
    if bad:
        raise typer.Exit(EXIT_FAIL)


__all__: list[str] = []
