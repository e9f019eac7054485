"""Benchmark names and the one task selector: which mteb tasks a command works on.

Every command that takes ``--benchmark``, ``--tasks`` or ``--task-types`` selects its tasks
here, so ``run``, ``plan``, ``prefetch``, ``instructions`` and the instruction-set checks agree
on names, order, subset filters and errors.

    from linq_eval.benchmarks import select_tasks, task_names
    select_tasks(task_types=["STS"])                  # the 10 STS task objects of MTEB(eng, v1)
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
from typing import TYPE_CHECKING

from linq_eval.errors import ConfigError, UnknownNameError, unknown_names

if TYPE_CHECKING:
    from mteb.abstasks.abstask import AbsTask

DEFAULT_BENCHMARK = "MTEB(eng, v1)"
"""The benchmark of Linq-Embed-Mistral's model card: what every command uses by default."""


@contextlib.contextmanager
def quiet_mteb() -> Iterator[None]:
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

    with quiet_mteb():
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
    with quiet_mteb():
        return mteb.get_task(name)


def task_type_names() -> list[str]:
    """Every task type mteb knows (``Retrieval``, ``STS`` ...)."""
    from mteb.abstasks.task_metadata import TaskType  # optional heavy dependency (see above)

    return list(typing.get_args(TaskType))


def select_tasks(
    benchmark: str | None = None,
    tasks: Sequence[str] | None = (),
    task_types: Sequence[str] | None = (),
) -> list[AbsTask]:
    """The mteb task objects of a command, in the benchmark's (or the given) order.

    ``benchmark`` (default ``DEFAULT_BENCHMARK``) keeps the benchmark's subset filters (e.g.
    the English subsets of STS17); ``task_types`` keeps only those types of its tasks;
    ``tasks`` names tasks explicitly and excludes the other two. Unknown names raise with
    suggestions (all unknown names at once).
    """
    tasks, task_types = list(tasks or ()), list(task_types or ())
    if benchmark and tasks:
        raise ConfigError("Give either --benchmark or --tasks, not both.")
    if tasks and task_types:
        raise ConfigError(
            "--task-types selects task types of a benchmark; with --tasks, list the tasks "
            "themselves."
        )
    valid_types = task_type_names()
    bad_types = [t for t in dict.fromkeys(task_types) if t not in valid_types]
    if bad_types:
        raise unknown_names("task type", bad_types, valid_types)
    if tasks:
        names = list(dict.fromkeys(tasks))
        unknown = [t for t in names if t not in mteb_task_names()]
        if unknown:
            raise unknown_names("task", unknown, mteb_task_names())
        return [mteb_task(name) for name in names]
    return _benchmark_tasks(benchmark or DEFAULT_BENCHMARK, task_types)


def _benchmark_tasks(name: str, task_types: Sequence[str]) -> list[AbsTask]:
    import mteb  # optional heavy dependency (see above)

    try:
        with quiet_mteb():
            bench = mteb.get_benchmark(name)
    except (KeyError, ValueError):
        raise UnknownNameError("benchmark", name, [b.name for b in mteb.get_benchmarks()]) from None
    selected = list(bench.tasks)
    if task_types:
        selected = [t for t in selected if t.metadata.type in task_types]
        if not selected:
            present = sorted({t.metadata.type for t in bench.tasks})
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
    "expanded_names",
    "mteb_task",
    "mteb_task_names",
    "quiet_mteb",
    "select_tasks",
    "task_names",
    "task_type_names",
]
