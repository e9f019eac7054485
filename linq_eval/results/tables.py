"""Leaderboard tables: per-task scores and honest means, as data (``render`` writes them).

Scores are x100 (``metrics.score_task``). Mean(Task) and Mean(TaskType) are computed as mteb's
``BenchmarkAggregation`` does; a mean over an incomplete set shows its coverage,
``59.80 (14/15)``, and never passes for a full one. A run that covers part of the benchmark adds
a column of every row's mean over that run's tasks: the like-for-like comparison.

Example::

    from linq_eval.results.reading import load_baselines
    from linq_eval.results.render import render
    from linq_eval.results.tables import build_table
    print(render(build_table(load_baselines()), "markdown", decimals=1))
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from linq_eval.benchmarks import DEFAULT_BENCHMARK, select
from linq_eval.errors import ConfigError, UnknownNameError
from linq_eval.registry import TaskInfo
from linq_eval.results.metrics import (
    CARD_ERA_BENCHMARKS,
    TaskScore,
    metric_difference,
    score_task,
    table_metric,
)
from linq_eval.results.pairing import Pairing, pair_rows
from linq_eval.results.reading import ResultSet

MISSING = "—"
"""What a table shows for a task without a score."""
_TYPE_ORDER = (
    "Classification",
    "Clustering",
    "PairClassification",
    "Reranking",
    "Retrieval",
    "STS",
    "Summarization",
)
"""Column order of the task types (others follow alphabetically)."""
_LEAD_TYPE = "Retrieval"
"""The type the card shows first."""
_MEAN_TASK_TYPE = "Mean(TaskType)"
"""The card layout's name for the mean of the type means."""
LEADERBOARD_MEAN_TASK = "Mean (Task)"
"""mteb leaderboard's column of the plain mean over all tasks."""
LEADERBOARD_MEAN_TASK_TYPE = "Mean (TaskType)"
"""mteb leaderboard's column of the mean of the type means."""
_SORTS = ("input", "average", "retrieval")


@dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark's tasks and types, read from mteb."""

    name: str
    tasks: tuple[TaskInfo, ...]
    """Its tasks (with its splits and subsets), by type (_TYPE_ORDER), then name."""

    @property
    def types(self) -> list[str]:
        """Task types present, in _TYPE_ORDER."""
        present = {t.type for t in self.tasks}
        return [t for t in _TYPE_ORDER if t in present] + sorted(present - set(_TYPE_ORDER))

    def of_type(self, task_type: str) -> list[TaskInfo]:
        return [t for t in self.tasks if t.type == task_type]

    def task(self, name: str) -> TaskInfo:
        """Look up a task by exact name (did-you-mean on a miss)."""
        for t in self.tasks:
            if t.name == name:
                return t
        raise UnknownNameError(f"task of {self.name}", name, [t.name for t in self.tasks])


@functools.lru_cache(maxsize=8)
def get_benchmark_spec(name: str = DEFAULT_BENCHMARK) -> BenchmarkSpec:
    """The tasks of an mteb benchmark (``benchmarks.select``), in table order."""
    selection = select(name)
    order = {t: i for i, t in enumerate(_TYPE_ORDER)}
    tasks = list(selection.tasks)
    tasks.sort(key=lambda t: (order.get(t.type, len(order)), t.type, t.name.casefold()))
    return BenchmarkSpec(name=selection.benchmark, tasks=tuple(tasks))


def selected_tasks(
    benchmark: str, tasks: Sequence[str] | None, task_types: Sequence[str] | None
) -> list[TaskInfo]:
    """``benchmarks.select`` as tables score it: the chosen tasks of the benchmark in table
    order, then the named ``tasks`` it does not contain (whole), in the given order."""
    selection = select(benchmark, tasks, task_types)
    chosen = set(selection.names) - selection.whole
    ordered = [t for t in get_benchmark_spec(selection.benchmark).tasks if t.name in chosen]
    whole = [t for t in selection.tasks if t.name in selection.whole]
    return ordered + whole


def _table_spec(
    benchmark: str, tasks: Sequence[str] | None, task_types: Sequence[str] | None
) -> BenchmarkSpec:
    """The benchmark a table scores: all of it, or the tasks ``selected_tasks`` chooses."""
    if not tasks and not task_types:
        return get_benchmark_spec(benchmark)
    chosen = selected_tasks(benchmark, tasks, task_types)
    return BenchmarkSpec(name=get_benchmark_spec(benchmark).name, tasks=tuple(chosen))


@dataclass(frozen=True)
class Mean:
    """A mean over a task set that knows how much of the set it covers."""

    value: float | None
    """Mean of the available scores (x100); None when none is available."""
    n: int
    """Tasks with a score."""
    total: int
    """Tasks in the set."""

    @property
    def complete(self) -> bool:
        return self.n == self.total and self.value is not None

    def format(self, decimals: int = 2) -> str:
        """``59.80``, ``59.80 (14/15)`` for a partial set, ``—`` for none."""
        if self.value is None or self.n == 0:
            return MISSING
        text = format_score(self.value, decimals)
        return text if self.complete else f"{text} ({self.n}/{self.total})"


def round_score(value: float, decimals: int = 2) -> float:
    """Round half up, on the value's first 8 decimals (so binary noise cannot decide a tie).

    Published scores carry 4 decimals, and 61.2050 must show as 61.21 however the float
    behind it came out (61.20499999... or 61.2050000...1).
    """
    exact = Decimal(f"{value:.8f}").quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return float(exact)


def format_score(value: float | None, decimals: int = 2, *, signed: bool = False) -> str:
    """A score for display: ``60.19``, ``+0.10`` with ``signed``, ``—`` for None."""
    if value is None:
        return MISSING
    rounded = round_score(value, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{rounded:+.{decimals}f}" if signed else f"{rounded:.{decimals}f}"


def tasks_count(n: int) -> str:
    """``1 task``, ``13 tasks``."""
    return f"{n} task{'s' if n != 1 else ''}"


def _plain_mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


@dataclass
class Row:
    """One result set summarised over a benchmark."""

    result_set: ResultSet
    """Where the scores come from."""
    label: str
    """Display name, unique within its table."""
    scores: dict[str, TaskScore]
    """Task name -> score, for every benchmark task."""
    means: dict[str, Mean]
    """Column name -> mean (``Table.columns``)."""

    @property
    def missing(self) -> list[str]:
        return [name for name, s in self.scores.items() if s.score is None]

    @property
    def is_baseline(self) -> bool:
        return self.result_set.is_baseline


def _type_column(spec: BenchmarkSpec, task_type: str) -> str:
    """Column name of a task type: ``Retrieval (15)``."""
    return f"{task_type} ({len(spec.of_type(task_type))})"


def _mean_columns(spec: BenchmarkSpec) -> tuple[str, str]:
    """Column names of the plain mean of all tasks and of the mean of the type means: the
    card's ``Average (56)`` and ``Mean(TaskType)``, or the leaderboard's ``Mean (Task)`` and
    ``Mean (TaskType)``."""
    if spec.name in CARD_ERA_BENCHMARKS:
        return f"Average ({len(spec.tasks)})", _MEAN_TASK_TYPE
    return LEADERBOARD_MEAN_TASK, LEADERBOARD_MEAN_TASK_TYPE


def _summary_columns(spec: BenchmarkSpec) -> list[str]:
    """Card layout (the benchmarks of the card's era): the card's columns first (Retrieval,
    Average), then Mean(TaskType) and the other types. Leaderboard layout: Mean (Task),
    Mean (TaskType), then every type."""
    types = [_type_column(spec, t) for t in spec.types]
    if spec.name not in CARD_ERA_BENCHMARKS:
        return [*_mean_columns(spec), *types]
    lead = [_type_column(spec, _LEAD_TYPE)] if _LEAD_TYPE in spec.types else []
    return [*lead, *_mean_columns(spec), *(c for c in types if c not in lead)]


def _summarize(rs: ResultSet, spec: BenchmarkSpec, label: str) -> Row:
    """Score every task of the benchmark and compute the means over what it has."""
    scores = {bt.name: score_task(rs, bt, table_metric(spec.name, bt)) for bt in spec.tasks}
    available = [s for s in scores.values() if s.score is not None]
    means = {}
    for t in spec.types:
        of_type = [s.score for s in available if s.type == t]
        means[_type_column(spec, t)] = Mean(
            _plain_mean(of_type), len(of_type), len(spec.of_type(t))
        )
    type_means = [m.value for m in means.values() if m.value is not None]
    n, total = len(available), len(spec.tasks)
    average, type_mean = _mean_columns(spec)
    means[average] = Mean(_plain_mean(s.score for s in available), n, total)
    means[type_mean] = Mean(_plain_mean(type_means), n, total)
    ordered = {c: means[c] for c in _summary_columns(spec)}
    return Row(result_set=rs, label=label, scores=scores, means=ordered)


def _column_groups(
    spec: BenchmarkSpec, subsets: Sequence[TaskSubset]
) -> dict[str, list[tuple[str, ...]]]:
    """Each mean column as the task groups it averages (one per type for Mean(TaskType))."""
    by_type = {
        _type_column(spec, t): [tuple(bt.name for bt in spec.of_type(t))] for t in spec.types
    }
    average, type_mean = _mean_columns(spec)
    groups = {
        **by_type,
        average: [tuple(bt.name for bt in spec.tasks)],
        type_mean: [g[0] for g in by_type.values()],
    }
    groups.update({s.column: [s.tasks] for s in subsets})
    return groups


@dataclass(frozen=True)
class TaskSubset:
    """A partial run's tasks: a column of every row's mean over them, to compare like for like."""

    tasks: tuple[str, ...]
    """The tasks the run has a score for, in benchmark order."""
    owners: tuple[str, ...]
    """Labels of the rows whose scored tasks are exactly these."""

    @property
    def column(self) -> str:
        """``Mean (5 tasks of Linq-Embed-Mistral @abc)``."""
        return f"Mean ({tasks_count(len(self.tasks))} of {', '.join(self.owners)})"

    def mean(self, row: Row) -> Mean:
        """``row``'s plain mean over these tasks (marked incomplete where it lacks one)."""
        present = [v for t in self.tasks if (v := row.scores[t].score) is not None]
        return Mean(_plain_mean(present), len(present), len(self.tasks))


def _partial_subsets(rows: Sequence[Row]) -> list[TaskSubset]:
    """The distinct task sets of the runs (not baselines) that cover part of the benchmark."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for row in rows:
        covered = tuple(name for name, s in row.scores.items() if s.score is not None)
        if row.is_baseline or not covered or len(covered) == len(row.scores):
            continue
        groups.setdefault(covered, []).append(row.label)
    return [TaskSubset(tasks, tuple(owners)) for tasks, owners in groups.items()]


@dataclass
class Table:
    """Rows of one benchmark, ready to render."""

    benchmark: BenchmarkSpec
    rows: list[Row]
    reference: Row | None = None
    """Row the deltas are taken against (``--reference``)."""
    subsets: list[TaskSubset] = field(default_factory=list)
    """Task sets of partial runs; each row's mean over each is in its ``means``."""
    pairs: list[Pairing] = field(default_factory=list)
    """Each re-run of a baseline's model, which follows that baseline row in ``rows``."""

    def pairing_of(self, row: Row) -> Pairing | None:
        """The pairing whose re-run ``row`` is, if any."""
        return next((p for p in self.pairs if p.run is row), None)

    @property
    def columns(self) -> list[str]:
        """Summary columns, then one per partial run's task set."""
        return _summary_columns(self.benchmark) + [s.column for s in self.subsets]

    @property
    def delta_columns(self) -> list[str]:
        """Columns whose difference to the reference is shown (the card's, partial runs')."""
        if self.reference is None:
            return []
        lead = [c for c in self.columns if c.startswith(f"{_LEAD_TYPE} (")]
        return lead + [_mean_columns(self.benchmark)[0]] + [s.column for s in self.subsets]

    def delta(self, row: Row, column: str) -> float | None:
        """``row`` minus the reference in one column; None unless both means are complete."""
        if self.reference is None or row is self.reference:
            return None
        a, b = row.means[column], self.reference.means[column]
        return a.value - b.value if a.complete and b.complete else None  # type: ignore[operator]

    def notes(self) -> list[str]:
        """Footnotes: missing tasks, era metrics, aggregates computed from subtasks."""
        notes = [
            f"{s.column}: every row's mean over the {len(s.tasks)} tasks that "
            f"{', '.join(s.owners)} {'has' if len(s.owners) == 1 else 'have'} "
            f"({_listed(s.tasks)}), to compare like for like with complete rows."
            for s in self.subsets
        ]
        notes += [p.note() for p in self.pairs]
        changed: dict[tuple[str, str], tuple[dict, dict, dict]] = {}  # dicts as ordered sets
        for row in self.rows:
            if row.missing:
                notes.append(
                    f"{row.label}: {len(row.missing)} of {len(row.scores)} tasks missing "
                    f"({_listed(row.missing)}); its means show their coverage."
                )
            for s in row.scores.values():
                if s.score is None and s.note not in ("", "no result file"):
                    notes.append(f"{row.label}: {s.task} has no score ({s.note}).")
            for s in row.scores.values():
                if s.note.startswith("mean of"):
                    notes.append(f"{row.label}: {s.task} is the {s.note}.")
                if s.changed_from and s.metric:
                    why = metric_difference(s.metric, s.changed_from)
                    tasks, metrics, labels = changed.setdefault((s.changed_from, why), ({}, {}, {}))
                    tasks[s.task] = metrics[s.metric] = labels[row.label] = None
        for (wanted, why), (tasks, metrics, labels) in changed.items():
            notes.append(
                f"{', '.join(sorted(tasks))}: {', '.join(labels)} show {' / '.join(metrics)} "
                f"in place of {wanted} ({why})."
            )
        return notes


def _listed(names: Sequence[str], most: int = 8) -> str:
    """``A, B, C`` (the first ``most`` names, then `` ...``)."""
    return ", ".join(names[:most]) + (" ..." if len(names) > most else "")


def _unique_labels(sets: Sequence[ResultSet]) -> list[str]:
    original = [rs.label for rs in sets]
    labels = list(original)
    for i, rs in enumerate(sets):
        if original.count(rs.label) > 1:
            labels[i] = (
                f"{rs.label} ({rs.source})" if rs.is_baseline else f"{rs.label} @{rs.revision[:8]}"
            )
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        seen[label] = seen.get(label, 0) + 1
        if labels.count(label) > 1:
            labels[i] = f"{label} #{seen[label]}"
    return labels


def _find_row(rows: Sequence[Row], name: str) -> Row:
    """The row a user means by ``name``: its label, model, ``published:<model>`` or path."""
    for row in rows:
        rs = row.result_set
        names = (row.label, rs.label, rs.model, rs.ref, str(rs.path), f"{rs.model}@{rs.revision}")
        if name in names:
            return row
    raise UnknownNameError("reference row", name, [r.label for r in rows])


def build_table(
    sets: Sequence[ResultSet],
    benchmark: str = DEFAULT_BENCHMARK,
    *,
    reference: str | None = None,
    sort: str = "input",
    tasks: Sequence[str] | None = None,
    task_types: Sequence[str] | None = None,
) -> Table:
    """Summarise result sets over a benchmark (or the ``tasks`` / ``task_types`` of it that
    ``benchmarks.select`` chooses); ``sort`` is input, average or retrieval."""
    if not sets:
        raise ConfigError("Nothing to tabulate: give result folders or --baselines published.")
    if sort not in _SORTS:
        raise UnknownNameError("sort order", sort, _SORTS)
    spec = _table_spec(benchmark, tasks, task_types)
    rows = [
        _summarize(rs, spec, label) for rs, label in zip(sets, _unique_labels(sets), strict=True)
    ]
    subsets = _partial_subsets(rows)
    for row in rows:
        row.means.update({s.column: s.mean(row) for s in subsets})
    if sort != "input":
        col = _mean_columns(spec)[0] if sort == "average" else _type_column(spec, _LEAD_TYPE)

        def key(row: Row) -> tuple[int, float]:
            m = row.means.get(col)
            return (0, -m.value) if m is not None and m.complete else (1, 0.0)  # type: ignore[operator]

        rows.sort(key=key)
    rows, pairs = pair_rows(rows, _column_groups(spec, subsets))
    ref_row = _find_row(rows, reference) if reference else None
    return Table(benchmark=spec, rows=rows, reference=ref_row, subsets=subsets, pairs=pairs)


__all__ = [
    "LEADERBOARD_MEAN_TASK",
    "LEADERBOARD_MEAN_TASK_TYPE",
    "MISSING",
    "BenchmarkSpec",
    "Mean",
    "Row",
    "Table",
    "TaskSubset",
    "build_table",
    "format_score",
    "tasks_count",
    "get_benchmark_spec",
    "round_score",
    "selected_tasks",
]
