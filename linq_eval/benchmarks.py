"""Benchmark names and the one task selector: which mteb tasks a command works on.

Every command that takes ``--benchmark``, ``--tasks`` or ``--task-types`` selects its tasks
here (``select``), so ``run``, ``plan``, ``prefetch``, ``table``, ``compare``, ``instructions``
and the instruction-set checks agree on names, order, language subsets, splits and errors.
A task is taken as its benchmark scores it: ``--tasks STS17`` is MTEB(eng, v1)'s STS17, its
``en-en`` subset on ``test``; a named task the benchmark does not contain runs whole.

    from linq_eval.benchmarks import select, select_tasks, task_names
    select_tasks(task_types=["STS"])                  # the 10 STS task objects of MTEB(eng, v1)
    select(tasks=["STS17"]).tasks[0].hf_subsets       # ['en-en']
    select(tasks=["STS16", "STS17"]).whole            # frozenset({'STS16'}): not in the benchmark
    task_names(tasks=["SciFact", "STS12"])            # ['SciFact', 'STS12']
    task_names(expand_aggregates=True)                # with CQADupstack's 12 subforums

mteb is imported inside the functions that need it: the GPU benchmark machine has no mteb, and
importing ``linq_eval.prompts.instruction_sets`` (which uses this module) must work there.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import typing
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from linq_eval.errors import ConfigError, UnknownNameError, unknown_names

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask

DEFAULT_BENCHMARK = "MTEB(eng, v1)"
"""The benchmark of Linq-Embed-Mistral's model card: what every command uses by default."""
WHOLE_TASK = "whole task: not in the benchmark"
"""What ``plan`` and ``prefetch`` say of a named task the benchmark lacks (it runs whole)."""


@contextlib.contextmanager
def _quiet_mteb() -> Iterator[None]:
    """Silence mteb's warnings about beta or superseded tasks while reading its registry."""
    logger = logging.getLogger("mteb")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


@functools.lru_cache(maxsize=1)
def mteb_task_names() -> frozenset[str]:
    """Every task name in mteb's registry (superseded, private and beta tasks included)."""
    import mteb  # optional heavy dependency: absent on the GPU benchmark machine

    with _quiet_mteb():
        tasks = mteb.get_tasks(
            exclude_superseded=False,
            exclude_aggregate=False,
            exclude_private=False,
            exclude_beta=False,
        )
    return frozenset(t.metadata.name for t in tasks)


def mteb_task(name: str) -> AbsTask:
    """One mteb task object; an unknown name raises ``UnknownNameError`` with suggestions."""
    import mteb  # optional heavy dependency: absent on the GPU benchmark machine

    if name not in mteb_task_names():
        raise UnknownNameError("task", name, mteb_task_names())
    with _quiet_mteb():
        return mteb.get_task(name)


def _task_type_names() -> list[str]:
    """Every task type mteb knows (``Retrieval``, ``STS`` ...)."""
    import mteb  # optional heavy dependency (see above)

    return list(typing.get_args(mteb.TaskMetadata.model_fields["type"].annotation))


@dataclass(frozen=True)
class TaskSelection:
    """The tasks a command works on, as its benchmark scores them."""

    benchmark: str
    """The benchmark the tasks are taken from."""
    tasks: tuple[AbsTask, ...]
    """mteb task objects, carrying the benchmark's subsets and splits (``hf_subsets``,
    ``eval_splits``); a named task the benchmark lacks is mteb's whole task."""
    whole: frozenset[str] = frozenset()
    """Names of the selected tasks the benchmark does not contain (run with every subset and
    split mteb gives them)."""

    @property
    def names(self) -> list[str]:
        """The task names, in selection order."""
        return [t.metadata.name for t in self.tasks]


def selection_problems(
    tasks: Sequence[str] | None = (), task_types: Sequence[str] | None = ()
) -> list[str]:
    """What is wrong with a combination of selection options (empty when nothing is)."""
    if tasks and task_types:
        return [
            (
                "--task-types selects task types of a benchmark; with --tasks, list the tasks "
                "themselves"
            )
        ]
    return []


def select(
    benchmark: str | None = None,
    tasks: Sequence[str] | None = (),
    task_types: Sequence[str] | None = (),
) -> TaskSelection:
    """The one task selector of ``run``, ``plan``, ``prefetch``, ``table`` and ``compare``.

    ``benchmark`` (default ``DEFAULT_BENCHMARK``) is where tasks come from, with its subset
    and split filters (STS17 ``en-en``, AmazonCounterfactualClassification ``en``, MSMARCO
    ``dev``). ``task_types`` keeps only those types of its tasks, in its order. ``tasks``
    names tasks, in the given order: each one the benchmark contains as the benchmark scores
    it, any other one whole (listed in ``whole``). Unknown names raise with suggestions (all
    unknown names at once).
    """
    tasks, task_types = list(dict.fromkeys(tasks or ())), list(dict.fromkeys(task_types or ()))
    problems = selection_problems(tasks, task_types)
    if problems:
        raise ConfigError(problems[0] + ".")
    valid_types = _task_type_names()
    bad_types = [t for t in task_types if t not in valid_types]
    if bad_types:
        raise unknown_names("task type", bad_types, valid_types)
    name, bench_tasks = benchmark_tasks(benchmark or DEFAULT_BENCHMARK)
    if not tasks:
        return TaskSelection(name, tuple(_of_types(name, bench_tasks, task_types)))
    unknown = [t for t in tasks if t not in mteb_task_names()]
    if unknown:
        raise unknown_names("task", unknown, mteb_task_names())
    by_name = {t.metadata.name: t for t in bench_tasks}
    chosen = tuple(by_name[t] if t in by_name else mteb_task(t) for t in tasks)
    return TaskSelection(name, chosen, frozenset(t for t in tasks if t not in by_name))


def select_tasks(
    benchmark: str | None = None,
    tasks: Sequence[str] | None = (),
    task_types: Sequence[str] | None = (),
) -> list[AbsTask]:
    """The task objects of ``select(...)``."""
    return list(select(benchmark, tasks, task_types).tasks)


def benchmark_tasks(name: str) -> tuple[str, list[AbsTask]]:
    """An mteb benchmark's name as mteb spells it and its task objects (with its filters)."""
    import mteb  # optional heavy dependency (see above)

    try:
        with _quiet_mteb():
            bench = mteb.get_benchmark(name)
    except (KeyError, ValueError):
        raise UnknownNameError("benchmark", name, [b.name for b in mteb.get_benchmarks()]) from None
    return bench.name, list(bench.tasks)


def _of_types(name: str, tasks: list[AbsTask], task_types: Sequence[str]) -> list[AbsTask]:
    if not task_types:
        return tasks
    selected = [t for t in tasks if t.metadata.type in task_types]
    if not selected:
        present = sorted({t.metadata.type for t in tasks})
        raise ConfigError(
            f"Benchmark {name!r} has no task of type {', '.join(task_types)}; "
            f"its types: {', '.join(present)}."
        )
    return selected


def expanded_names(tasks: Iterable[AbsTask]) -> list[str]:
    """Task names with the subtasks of aggregate tasks (CQADupstack's forums) after each."""
    names: list[str] = []
    for task in tasks:
        names.append(task.metadata.name)
        if task.is_aggregate:
            names.extend(sub.metadata.name for sub in task.metadata.tasks)
    return list(dict.fromkeys(names))


def task_names(
    benchmark: str | None = None,
    tasks: Sequence[str] | None = (),
    task_types: Sequence[str] | None = (),
    *,
    expand_aggregates: bool = False,
) -> list[str]:
    """The names of ``select_tasks(...)``; ``expand_aggregates`` adds each aggregate's
    subtasks (CQADupstackRetrieval's subforums) after it."""
    selected = select_tasks(benchmark, tasks, task_types)
    if expand_aggregates:
        return expanded_names(selected)
    return list(dict.fromkeys(t.metadata.name for t in selected))


__all__ = [
    "DEFAULT_BENCHMARK",
    "WHOLE_TASK",
    "TaskSelection",
    "benchmark_tasks",
    "expanded_names",
    "mteb_task",
    "mteb_task_names",
    "select",
    "select_tasks",
    "selection_problems",
    "task_names",
]
