"""Everything a run decides before a model is loaded: its tasks, shard, prompts and plan.

``prepare`` is what ``linq-eval plan`` and ``run --dry-run`` print and what ``run`` starts from.
It reads mteb's registry as data (``linq_eval.registry``) and the output folder, and imports
neither torch nor mteb, so a bad option or an unknown name is answered in well under a second
and a plan of the full suite in about one.

    from linq_eval.run.config import RunConfig
    from linq_eval.run.preparation import plan_run
    plan_run(RunConfig(tasks=("SciFact",))).rows[0].estimate.tokens
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from linq_eval.benchmarks import TaskSelection, expanded_names, select
from linq_eval.model.resolved import ResolvedProfile
from linq_eval.registry import TaskInfo
from linq_eval.run.cache_reuse import estimate_reuse
from linq_eval.run.config import RunConfig, resolve_profile
from linq_eval.run.estimate import estimate_task
from linq_eval.run.plan import Plan, PlanRow, assign_shards, shared_corpus_of
from linq_eval.run.result_store import task_done


@dataclass(frozen=True)
class Prepared:
    """A run's decisions, made once, read by every later step."""

    selection: TaskSelection
    """Every selected task (all shards)."""
    tasks: tuple[TaskInfo, ...]
    """The tasks this process runs (its shard's)."""
    resolved: ResolvedProfile
    """The profile, its policy and its instruction set, resolved once for the whole run."""
    folder: Path
    """``<output>/<org__model>/<revision>``."""
    plan: Plan
    """What ``plan`` prints."""


def prepare(config: RunConfig) -> Prepared:
    """Everything decided before a model is loaded: tasks, shard, instructions, plan."""
    config.check()
    selection = select(config.benchmark, config.tasks, config.task_types)
    all_tasks = selection.tasks
    resolved = resolve_profile(config)
    profile = resolved.profile
    prompts = resolved.prompts(expanded_names(all_tasks))  # every task has an instruction
    estimates = [
        estimate_task(t, max_length=profile.max_length, prompts=prompts) for t in all_tasks
    ]
    tasks, chosen = all_tasks, estimates
    if config.shard is not None:
        names = set(assign_shards(estimates, config.shard.count)[config.shard.index - 1])
        tasks = tuple(t for t in all_tasks if t.name in names)
        chosen = [e for e in estimates if e.name in names]
    folder = profile.result_folder(config.output)
    chosen_names = [e.name for e in chosen]
    cached = estimate_reuse(
        tasks, chosen, folder, prompts_of=resolved.prompts, cache_dir=config.embedding_cache_dir
    )
    rows = [
        PlanRow(
            e,
            done=task_done(folder, t) if folder.is_dir() else False,
            shares_corpus_with=shared_corpus_of(e.name, chosen_names),
            cached=cached.get(e.name),
            splits=t.eval_splits,
            subsets=t.hf_subsets,
            whole=e.name in selection.whole,
        )
        for e, t in zip(chosen, tasks, strict=True)
    ]
    plan = Plan(
        model=profile.mteb_model_name,
        revision=folder.name,
        result_folder=str(folder),
        rows=rows,
        max_length=profile.max_length,
        tokens_per_s=config.tokens_per_s,
        shard=config.shard,
        all_tasks=len(all_tasks),
        benchmark=selection.benchmark,
    )
    return Prepared(selection, tasks, resolved, folder, plan)


def plan_run(config: RunConfig) -> Plan:
    """The plan of a run (``linq-eval plan`` and ``--dry-run``); loads no model."""
    return prepare(config).plan


__all__ = ["Prepared", "plan_run", "prepare"]
