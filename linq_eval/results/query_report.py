"""The query-level part of a comparison: which queries of a task got worse, and whether a
task's drop is more than noise.

Both sides' per-query evidence (``linq_eval.results.per_query``) is read from their result
folders, each file checked against the result it must explain (``read_bound_evidence``);
shipped baselines have none, so against them the comparison stays per task. ``compare`` and
the HTML report both read it through ``query_diffs``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from linq_eval.results.per_query import (
    DEFAULT_WORST,
    PERMUTATIONS,
    SUFFIX,
    SuiteQueryDiff,
    TaskQueryDiff,
    diff_suite,
    diff_task,
    evidence_path,
    read_bound_evidence,
)
from linq_eval.results.reading import ResultSet
from linq_eval.run_record import task_settings

NOT_SIGNIFICANT = "not significant"
"""A drop beyond the tolerance whose paired test gives p >= alpha (with a significance gate)."""
_TEXT_WIDTH = 70
"""Characters of a query's text shown in reports."""


def _evidence_settings(rs: ResultSet, task: str) -> dict[str, Any] | None:
    """The score-deciding settings a task's evidence must have been made with: the task's own
    entry in the run record, or the entry of the aggregate it is a subtask of (None: the
    record keeps none for it)."""
    settings, own = task_settings(rs.run_record, task)
    if own:
        return settings
    for name, entry in ((rs.run_record or {}).get("tasks") or {}).items():
        if task in (entry.get("subtasks") or ()):
            return task_settings(rs.run_record, name)[0]
    return None


def evidence_tasks(rs: ResultSet) -> list[str]:
    """The tasks a result folder keeps per-query evidence for (aggregates' subtasks by
    name), sorted."""
    return sorted(p.name[: -len(SUFFIX)] for p in rs.path.glob(f"*{SUFFIX}"))


@dataclass(frozen=True)
class QueryComparison:
    """The query-level part of a comparison: per task, and over the suite of those tasks."""

    tasks: dict[str, TaskQueryDiff]
    """Each task both sides kept evidence for."""
    suite: SuiteQueryDiff | None
    """Their mean over tasks (None without such a task)."""


def compare_queries(
    run: ResultSet,
    reference: ResultSet,
    tasks: Sequence[str],
    *,
    worst: int = DEFAULT_WORST,
    suite: Sequence[str] | None = None,
) -> QueryComparison:
    """Query-level comparison of every task of ``tasks`` both sides kept evidence for, and of
    the suite of them (of those in ``suite``, where given: a benchmark's own tasks).
    ``EvidenceError`` for evidence that is damaged or does not explain its result."""
    pairs = {}
    for task in tasks:
        mine = read_bound_evidence(run.path, task, _evidence_settings(run, task))
        theirs = read_bound_evidence(reference.path, task, _evidence_settings(reference, task))
        if mine is not None and theirs is not None:
            pairs[task] = (mine, theirs)
    members = {t: p for t, p in pairs.items() if suite is None or t in suite}
    return QueryComparison(
        {task: diff_task(*pair, worst=worst) for task, pair in pairs.items()}, diff_suite(members)
    )


def missing_evidence_note(
    run: ResultSet, reference: ResultSet, tasks: Sequence[str], diffs: Mapping[str, Any]
) -> list[str]:
    """The note naming the compared tasks without per-query evidence, and on which side."""
    sides = {
        task: [
            role
            for role, rs in (("run", run), ("reference", reference))
            if not evidence_path(rs.path, task).is_file()
        ]
        for task in tasks
        if task not in diffs
    }
    if not sides:
        return []
    listed = "; ".join(f"{task} ({' and '.join(roles)})" for task, roles in sides.items())
    return [
        (
            f"No per-query evidence for {len(sides)} compared task(s), compared per task only: "
            f"{listed}."
        )
    ]


def significance_status(row: Any, diff: TaskQueryDiff | None, alpha: float) -> Any:
    """A task's comparison row under a significance gate: a regression whose paired test
    gives p >= ``alpha`` becomes ``not significant`` (kept out of the verdict)."""
    if row.status == "REGRESSION" and diff is not None and diff.p_value >= alpha:
        return dataclasses.replace(row, status=NOT_SIGNIFICANT)
    return row


def significance_notes(rows: Iterable[Any], diffs: Mapping[str, TaskQueryDiff]) -> list[str]:
    """Which gated tasks could not be tested for significance (no evidence on one side)."""
    untested = [r.task for r in rows if r.task not in diffs and r.run is not None]
    if not untested:
        return []
    return [
        (
            f"No per-query evidence on both sides for {', '.join(untested)}: gated on the "
            "tolerance alone (significance not tested)."
        )
    ]


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _TEXT_WIDTH else text[: _TEXT_WIDTH - 1] + "…"


def _ids(ids: Sequence[str]) -> str:
    return ", ".join(ids) if ids else "-"


def _summary(d: TaskQueryDiff) -> str:
    return (
        f"{d.task} ({d.metric}, {d.queries} queries): {d.up} up, {d.down} down, "
        f"{d.unchanged} unchanged; mean {100 * d.mean_delta:+.2f}; p = {d.p_value:.4f} "
        f"(paired permutation test, {PERMUTATIONS:,} sign flips)"
    )


def moved(diffs: Iterable[TaskQueryDiff]) -> list[TaskQueryDiff]:
    """The tasks in which some query changed, largest mean drop first."""
    return sorted((d for d in diffs if d.up or d.down), key=lambda d: (d.mean_delta, d.task))


def query_text(diffs: Iterable[TaskQueryDiff]) -> list[str]:
    """Plain-text lines: per task that moved, the summary and the queries that lost most."""
    lines: list[str] = []
    for d in moved(diffs):
        lines += ["", "per query: " + _summary(d)]
        for c in d.worst:
            lines.append(
                f"  {100 * c.delta:+7.2f}  query {c.query_id}: {_short(c.text)!r}  "
                f"{100 * c.before:.2f} -> {100 * c.after:.2f}  "
                f"top 10 in: {_ids(c.entered)}; out: {_ids(c.left)}"
            )
    return lines + ([""] if lines else [])


def query_markdown(diffs: Iterable[TaskQueryDiff]) -> list[str]:
    """Markdown: per task that moved, the summary and a table of the queries that lost most."""
    lines: list[str] = []
    for d in moved(diffs):
        lines += ["", f"**Per query**: {_summary(d)}", ""]
        if not d.worst:
            continue
        lines += [
            "| Δ | Query | Text | Before | After | Entered top 10 | Left top 10 |",
            "|---:|---|---|---:|---:|---|---|",
        ]
        for c in d.worst:
            text = _short(c.text).replace("|", "\\|")
            lines.append(
                f"| {100 * c.delta:+.2f} | {c.query_id} | {text} | {100 * c.before:.2f} | "
                f"{100 * c.after:.2f} | {_ids(c.entered)} | {_ids(c.left)} |"
            )
    return lines + ([""] if lines else [])


__all__ = [
    "NOT_SIGNIFICANT",
    "QueryComparison",
    "compare_queries",
    "evidence_tasks",
    "missing_evidence_note",
    "moved",
    "query_markdown",
    "query_text",
    "significance_notes",
    "significance_status",
]
