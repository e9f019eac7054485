"""Benchmark names and the one task selector: which mteb tasks a command works on.

Every command that takes ``--benchmark``, ``--tasks`` or ``--task-types`` selects its tasks
here (``select``), so ``run``, ``plan``, ``prefetch``, ``table``, ``compare``, ``instructions``
and the instruction-set checks agree on names, order, language subsets, splits and errors.
A task is taken as its benchmark scores it: ``--tasks STS17`` is MTEB(eng, v1)'s STS17, its
``en-en`` subset on ``test``; a named task the benchmark does not contain runs whole.

    from linq_eval.benchmarks import select, select_tasks, task_names
    select_tasks(task_types=["STS"])                  # the 10 STS tasks of MTEB(eng, v1)
    select(tasks=["STS17"]).tasks[0].hf_subsets       # ('en-en',)
    select(tasks=["STS16", "STS17"]).whole            # frozenset({'STS16'}): not in the benchmark
    task_names(tasks=["SciFact", "STS12"])            # ['SciFact', 'STS12']
    task_names(expand_aggregates=True)                # with CQADupstack's 12 subforums

Selections are ``TaskInfo`` records of mteb's registry (``linq_eval.registry``), read without
importing mteb; ``mteb_tasks`` gives the mteb task objects a run evaluates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from linq_eval.errors import ConfigError, unknown_names
from linq_eval.registry import TaskInfo, quiet_mteb, registry

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask

DEFAULT_BENCHMARK = "MTEB(eng, v1)"
"""The benchmark of Linq-Embed-Mistral's model card: what every command uses by default."""
WHOLE_TASK = "whole task: not in the benchmark"
"""What ``plan`` and ``prefetch`` say of a named task the benchmark lacks (it runs whole)."""


@dataclass(frozen=True)
class TaskSelection:
    """The tasks a command works on, as its benchmark scores them."""

    benchmark: str
    """The benchmark the tasks are taken from."""
    tasks: tuple[TaskInfo, ...]
    """The tasks, carrying the benchmark's subsets and splits (``hf_subsets``,
    ``eval_splits``); a named task the benchmark lacks is mteb's whole task."""
    whole: frozenset[str] = frozenset()
    """Names of the selected tasks the benchmark does not contain (run with every subset and
    split mteb gives them)."""

    @property
    def names(self) -> list[str]:
        """The task names, in selection order."""
        return [t.name for t in self.tasks]


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
    reg = registry()
    valid_types = sorted({t.type for t in reg.tasks.values()})
    bad_types = [t for t in task_types if t not in valid_types]
    if bad_types:
        raise unknown_names("task type", bad_types, valid_types)
    bench = reg.benchmark(benchmark or DEFAULT_BENCHMARK)
    if not tasks:
        return TaskSelection(bench.name, tuple(_of_types(bench.name, bench.tasks, task_types)))
    unknown = [t for t in tasks if t not in reg.tasks]
    if unknown:
        raise unknown_names("task", unknown, reg.tasks)
    by_name = {t.name: t for t in bench.tasks}
    chosen = tuple(by_name.get(t) or reg.tasks[t] for t in tasks)
    return TaskSelection(bench.name, chosen, frozenset(t for t in tasks if t not in by_name))


def select_tasks(
    benchmark: str | None = None,
    tasks: Sequence[str] | None = (),
    task_types: Sequence[str] | None = (),
) -> list[TaskInfo]:
    """The tasks of ``select(...)``."""
    return list(select(benchmark, tasks, task_types).tasks)


def _of_types(name: str, tasks: Sequence[TaskInfo], task_types: Sequence[str]) -> list[TaskInfo]:
    if not task_types:
        return list(tasks)
    selected = [t for t in tasks if t.type in task_types]
    if not selected:
        present = sorted({t.type for t in tasks})
        raise ConfigError(
            f"Benchmark {name!r} has no task of type {', '.join(task_types)}; "
            f"its types: {', '.join(present)}."
        )
    return selected


def expanded_names(tasks: Iterable[TaskInfo]) -> list[str]:
    """Task names with the subtasks of aggregate tasks (CQADupstack's forums) after each."""
    names: list[str] = []
    for task in tasks:
        names += [task.name, *task.subtasks]
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
    return list(dict.fromkeys(t.name for t in selected))


def mteb_tasks(selection: TaskSelection, names: Sequence[str] | None = None) -> list[AbsTask]:
    """mteb's task objects of a selection (or of its tasks ``names``), with the benchmark's
    filters, for evaluating them (imports mteb)."""
    import mteb

    with quiet_mteb():
        bench = {t.metadata.name: t for t in mteb.get_benchmark(selection.benchmark).tasks}
        return [
            bench[name] if name in bench and name not in selection.whole else mteb.get_task(name)
            for name in (selection.names if names is None else names)
        ]


__all__ = [
    "DEFAULT_BENCHMARK",
    "WHOLE_TASK",
    "TaskSelection",
    "expanded_names",
    "mteb_tasks",
    "select",
    "select_tasks",
    "selection_problems",
    "task_names",
]
