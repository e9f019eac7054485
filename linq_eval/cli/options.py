"""Options shared by ``run``, ``plan``, ``prefetch`` (and the task options of ``compare`` and
``table``), defined once."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import typer

from linq_eval.benchmarks import DEFAULT_BENCHMARK
from linq_eval.profiles import DEFAULT_PROFILE, DTYPE_NAMES, EOS_CHOICES, POOLING_CHOICES
from linq_eval.prompts.policies import POLICIES
from linq_eval.run.plan import DEFAULT_TOKENS_PER_S, Shard

if TYPE_CHECKING:
    from linq_eval.run.config import RunConfig

MODEL_OPT = typer.Option(
    DEFAULT_PROFILE, "--model", help="Profile name, hub id (org/name) or model directory."
)
REVISION_OPT = typer.Option(None, "--revision", help="Model revision (default: the profile's pin).")
_BENCHMARK_OPT = typer.Option(
    None,
    "--benchmark",
    help=f"mteb benchmark the tasks come from, with its language subsets and splits "
    f"(default: {DEFAULT_BENCHMARK}).",
)
BENCHMARK_DEFAULT_OPT = typer.Option(DEFAULT_BENCHMARK, "--benchmark", help="mteb benchmark.")
"""--benchmark where a benchmark is always used (table, compare, validate-instructions)."""
_TASKS_HELP = (
    "Only these tasks (exact mteb names; repeat, or list after it), each as the benchmark "
    "scores it; a task the benchmark lacks {whole}."
)
_TASKS_OPT = typer.Option(None, "--tasks", help=_TASKS_HELP.format(whole="runs whole"))
"""--tasks of the commands that run tasks (run, plan, prefetch)."""
RESULT_TASKS_OPT = typer.Option(
    None, "--tasks", help=_TASKS_HELP.format(whole="is read whole (every split and subset)")
)
"""--tasks of the commands that read results (table, compare)."""
TASK_TYPES_OPT = typer.Option(
    None, "--task-types", help="Keep only these task types of the benchmark (Retrieval STS ...)."
)
MAX_LENGTH_OPT = typer.Option(None, "--max-length", help="Tokens per input (default: profile's).")


def _one_of(names) -> str:
    """``a, b or c``: the choices of an option, as its help lists them."""
    *rest, last = names
    return f"{', '.join(rest)} or {last}" if rest else last


DTYPE_OPT = typer.Option(None, "--dtype", help=f"{_one_of(('auto', *DTYPE_NAMES))}.")
EOS_OPT = typer.Option(
    None,
    "--eos",
    help=f"{_one_of(EOS_CHOICES)}: whether every input ends with EOS (default: profile's).",
)
POOLING_OPT = typer.Option(
    None, "--pooling", help=f"{_one_of(POOLING_CHOICES)} (default: profile's)."
)
POLICY_HELP = f"Instruction policy: {_one_of(POLICIES)}."
POLICY_OPT = typer.Option(None, "--policy", help=f"{POLICY_HELP[:-1]} (default: profile's).")
INSTRUCTIONS_OPT = typer.Option(
    None, "--instructions", help="Instruction set name (task_instructions/) or YAML path."
)
OUTPUT_OPT = typer.Option(
    "results", "--output", help="Output folder (mteb's results/ tree, run record, cache)."
)
DATA_DIR_OPT = typer.Option(
    None, "--data-dir", help="Local task data, one folder per task (see linq_eval.run.local_data)."
)
SHARD_OPT = typer.Option(
    None, "--shard", metavar="INDEX/COUNT", help="Run job INDEX of COUNT (1-based), e.g. 2/4."
)
RANDOM_OPT = typer.Option(
    None, "--random-init", help="Randomly initialised Mistral of this size (tiny, mistral-7b)."
)
TPS_OPT = typer.Option(
    DEFAULT_TOKENS_PER_S, "--tokens-per-s", help="Throughput assumed for the GPU-hours estimate."
)


_SELECTION_OPTIONS = (
    ("model", str, MODEL_OPT),
    ("revision", str | None, REVISION_OPT),
    ("benchmark", str | None, _BENCHMARK_OPT),
    ("tasks", list[str] | None, _TASKS_OPT),
    ("task_types", list[str] | None, TASK_TYPES_OPT),
)
"""What ``run``, ``plan`` and ``prefetch`` work on, the model and the tasks: their first options
(name, type, option), added by ``with_selection_options``."""


def with_selection_options(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` (whose first parameter is the typer context) taking _SELECTION_OPTIONS first:
    typer reads the returned function's signature, the command reads the values from
    ``ctx.params`` (as ``run_config`` does)."""
    signature = inspect.signature(command, eval_str=True)
    ctx, *own = signature.parameters.values()
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    shared = [
        inspect.Parameter(name, kind, default=option, annotation=annotation)
        for name, annotation, option in _SELECTION_OPTIONS
    ]
    names = {p.name for p in shared}

    @functools.wraps(command)
    def with_selection(ctx: typer.Context, **values: Any) -> None:
        command(ctx, **{k: v for k, v in values.items() if k not in names})

    with_selection.__signature__ = signature.replace(parameters=[ctx, *shared, *own])  # type: ignore[attr-defined]
    return with_selection


def run_config(params: Mapping[str, Any], **overrides: Any) -> RunConfig:
    """A RunConfig from a command's parsed options (``ctx.params``): each option named like a
    RunConfig field goes to that field, ``overrides`` win; the shard is parsed, a list not
    given is empty."""
    from linq_eval.run.config import RunConfig  # loads torch: lazily, see linq_eval.cli

    fields = {f.name for f in dataclasses.fields(RunConfig)}
    options = {k: v for k, v in {**params, **overrides}.items() if k in fields}
    shard = options.pop("shard", None)
    options["tasks"] = tuple(options.get("tasks") or ())
    options["task_types"] = tuple(options.get("task_types") or ())
    return RunConfig(shard=Shard.parse(str(shard)) if shard else None, **options)


__all__ = [
    "BENCHMARK_DEFAULT_OPT",
    "DATA_DIR_OPT",
    "DTYPE_OPT",
    "EOS_OPT",
    "INSTRUCTIONS_OPT",
    "MAX_LENGTH_OPT",
    "MODEL_OPT",
    "OUTPUT_OPT",
    "POLICY_OPT",
    "POLICY_HELP",
    "POOLING_OPT",
    "RANDOM_OPT",
    "RESULT_TASKS_OPT",
    "REVISION_OPT",
    "SHARD_OPT",
    "TASK_TYPES_OPT",
    "TPS_OPT",
    "run_config",
    "with_selection_options",
]
