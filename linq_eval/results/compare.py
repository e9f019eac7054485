"""Compare a run with a reference, task by task, and gate on regressions (the CI check).

A task regresses when the run's score falls more than ``tolerance`` points (x100) below the
reference's; a task the reference has but the run lacks is a failure too. The run is read in
the computation the reference's score was made with (``linq_eval.results.metrics``): a run's
``cosine_ap`` against a published ``cos_sim_ap``, never its ``max_ap``. Where the run has no
field with that computation (a file holding only ``max_ap``), the task is shown as "metric
changed" and kept out of the verdict unless metric changes are allowed.

A run whose tasks were made with other score-deciding settings than the reference's (every
field of ``linq_eval.run_record.ScoreSettings`` marked ``score``: model, pooling, embedding
precision, instruction-set version, prompt hash ...) is refused (``DriftError``) unless drift
is allowed, and then the differences are printed. Each task's own settings are compared (the
run record keeps them per task). A folder without ``linq_eval/run.json`` (a baseline, a plain
mteb folder) has unknown settings: it is not treated as drifting, and the report says so; a
setting only one side records (an older record) is noted, not compared.

Example::

    from linq_eval.results.compare import compare, render_comparison
    result = compare("runs/ci", "published:Linq-AI-Research/Linq-Embed-Mistral",
                     tasks=["SciFact", "NFCorpus"], tolerance=0.5)
    print(render_comparison(result)); raise SystemExit(0 if result.passed else 1)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from linq_eval.benchmarks import DEFAULT_BENCHMARK
from linq_eval.errors import ConfigError, DriftError, ResultsError, UnknownNameError
from linq_eval.results.metrics import metric_difference, mteb_difference, mteb_version, score_task
from linq_eval.results.per_query import DEFAULT_WORST, PERMUTATIONS, SuiteQueryDiff, TaskQueryDiff
from linq_eval.results.query_report import (
    NOT_SIGNIFICANT,
    compare_queries,
    missing_evidence_note,
    query_markdown,
    query_text,
    significance_notes,
    significance_status,
)
from linq_eval.results.reading import ResultSet, resolve_one
from linq_eval.results.tables import (
    format_score,
    get_benchmark_spec,
    round_score,
    selected_tasks,
    tasks_count,
)
from linq_eval.run_record import (
    RUN_SCORE_KEYS,
    SCORE_KEYS,
    differing_keys,
    missing_keys,
    task_settings,
)

COMPARE_FORMATS = ("text", "json", "markdown")
"""The formats ``render_comparison`` writes."""
DEFAULT_TOLERANCE = 0.5
"""Largest drop per task (points x100) a comparison lets pass unless told otherwise."""
DEFAULT_ALPHA = 0.05
"""Significance level of the paired permutation test under ``--require-significant``."""
_STATUS_METRIC_CHANGED = "metric changed"
GATES = ("task", "suite", "both")
"""What fails a comparison: a task's drop, the suite's mean drop, or either."""


@dataclass(frozen=True)
class SettingDiff:
    """One setting that differs between run and reference."""

    key: str
    """Settings key (``max_length``)."""
    run: Any
    """The run's value (None when the run does not record it)."""
    reference: Any
    tasks: tuple[str, ...] = ()
    """The compared tasks whose settings differ so."""

    def describe(self) -> str:
        """``max_length: run 512 vs reference 4096 (SciFact, NFCorpus)``."""
        shown = ", ".join(self.tasks) if len(self.tasks) <= 5 else f"{len(self.tasks)} tasks"
        where = f" ({shown})" if self.tasks else ""
        what = "the data read (data_hash)" if self.key == "data_hash" else self.key
        return f"{what}: run {self.run!r} vs reference {self.reference!r}{where}"


@dataclass(frozen=True)
class TaskDelta:
    """Run versus reference on one task."""

    task: str
    type: str
    run: float | None
    """The run's main score x100 (None: missing)."""
    reference: float | None
    """The reference's main score x100."""
    status: str
    """``ok``, ``better``, ``REGRESSION``, ``MISSING``, or not gated: ``metric changed``,
    ``not significant`` (with a significance gate)."""
    run_metric: str | None = None
    """Metric behind the run's score."""
    reference_metric: str | None = None
    """Metric behind the reference's score (the era's cos_sim_ap / map for published files)."""
    note: str = ""
    """Why the run has no score, where it has none."""
    metric_changed: bool = False
    """The run's score is another computation than the reference's."""
    mteb_change: str = ""
    """Why the run's and the reference's mteb versions compute the metric differently."""

    @property
    def delta(self) -> float | None:
        """Run minus reference (points x100)."""
        if self.run is None or self.reference is None:
            return None
        return self.run - self.reference


@dataclass(frozen=True)
class SuiteVerdict:
    """The suite's mean, run against reference: its change and whether it fails the gate."""

    test: SuiteQueryDiff
    """The task-stratified permutation test over the suite's queries."""
    delta: float
    """Run minus reference in the mean of the suite's task scores (points x100)."""
    status: str
    """``ok``, ``better``, ``REGRESSION`` or ``not significant`` (as a task's)."""
    moved: tuple[str, ...]
    """The suite's tasks whose own paired test finds a change (p < alpha): what moved it."""

    @property
    def failed(self) -> bool:
        return self.status == "REGRESSION"

    def describe(self, decimals: int = 2) -> str:
        """One line: the change, the test and the tasks that moved on their own."""
        moved = f"; moved on their own: {', '.join(self.moved)}" if self.moved else ""
        return (
            f"suite ({tasks_count(len(self.test.tasks))}, {self.test.queries} queries): mean of "
            f"task scores {format_score(self.delta, decimals, signed=True)}; p = "
            f"{self.test.p_value:.4f} (task-stratified paired permutation test, "
            f"{PERMUTATIONS:,} sign flips){moved}: {self.status}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.test.as_dict(),
            "delta": self.delta,
            "status": self.status,
            "moved": list(self.moved),
        }


@dataclass
class Comparison:
    """The outcome of a comparison."""

    run: ResultSet
    reference: ResultSet
    benchmark: str
    tolerance: float
    """Largest allowed drop, in points x100."""
    tasks: list[TaskDelta]
    drift: list[SettingDiff] = field(default_factory=list)
    """Settings that differ (only non-empty when drift was allowed)."""
    notes: list[str] = field(default_factory=list)
    """Unknown settings, metric differences, skipped tasks."""
    allow_metric_change: bool = False
    """Whether tasks compared across different computations count in the verdict."""
    queries: dict[str, TaskQueryDiff] = field(default_factory=dict)
    """Query-level comparison of each task both sides kept per-query evidence for."""
    alpha: float | None = None
    """With a significance gate: the p-value below which a drop counts as a regression."""
    suite: SuiteVerdict | None = None
    """The suite's mean over the tasks with evidence on both sides (with ``per_query``)."""
    gate: str = "task"
    """What fails the comparison (``GATES``): a task, the suite's mean, or either."""

    @property
    def regressions(self) -> list[TaskDelta]:
        """Tasks more than the tolerance below the reference (that the gate counts)."""
        return [t for t in self.tasks if t.status == "REGRESSION"]

    @property
    def suite_failed(self) -> bool:
        """The suite's mean is gated and fell more than the tolerance below the reference."""
        return self.gate != "task" and self.suite is not None and self.suite.failed

    @property
    def missing(self) -> list[TaskDelta]:
        return [t for t in self.tasks if t.status == "MISSING"]

    @property
    def not_gated(self) -> list[TaskDelta]:
        """Tasks kept out of the verdict: compared across different computations."""
        return [t for t in self.tasks if t.status == _STATUS_METRIC_CHANGED]

    @property
    def passed(self) -> bool:
        """True when no gated task regressed, the gated suite did not, and no task is
        missing."""
        return not self.regressions and not self.missing and not self.suite_failed


def check_drift(
    run: ResultSet, reference: ResultSet, tasks: Sequence[str]
) -> tuple[list[SettingDiff], list[str]]:
    """Score-deciding settings that differ between run and reference on ``tasks`` (each
    task's own settings), and notes on unknown or unrecorded settings."""
    notes = [
        f"The {role} ({rs.ref}) records no settings (no linq_eval/run.json): "
        "drift not checked against it."
        for role, rs in (("run", run), ("reference", reference))
        if rs.settings is None
    ]
    if run.settings is None or reference.settings is None:
        return [], notes
    found: dict[tuple[str, str, str], list[str]] = {}
    values: dict[tuple[str, str, str], tuple[Any, Any]] = {}
    unrecorded: set[str] = set()
    for task in tasks:
        (a, own_a), (b, own_b) = (task_settings(rs.run_record, task) for rs in (run, reference))
        if a is None or b is None:
            continue
        # a folder's prompt hash covers all its tasks: only tasks' own hashes are comparable
        keys = SCORE_KEYS if own_a and own_b else RUN_SCORE_KEYS
        unrecorded.update(missing_keys(a, b, keys))
        for key in differing_keys(a, b, keys=keys):
            ident = (key, repr(a.get(key)), repr(b.get(key)))
            found.setdefault(ident, []).append(task)
            values[ident] = (a.get(key), b.get(key))
    diffs = [SettingDiff(k[0], *values[k], tasks=tuple(t)) for k, t in found.items()]
    if unrecorded:
        notes.append(f"Recorded by only one side, not compared: {', '.join(sorted(unrecorded))}.")
    return diffs, notes


def _status(run: float | None, ref: float, tolerance: float, ungated: bool = False) -> str:
    if run is None:
        return "MISSING"
    if ungated:
        return _STATUS_METRIC_CHANGED
    delta = round(run - ref, 9)  # float noise must not turn -0.5 into a regression at 0.5
    if delta < -tolerance:
        return "REGRESSION"
    if delta > tolerance:
        return "better"
    return "ok"


def check_options(
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    alpha: float = DEFAULT_ALPHA,
    fmt: str = "text",
    gate: str = "task",
) -> None:
    """The comparison's own options, checked before any folder is read."""
    if gate not in GATES:
        raise UnknownNameError("gate", gate, GATES)
    if tolerance < 0:
        raise ConfigError(f"--tolerance must be >= 0, got {tolerance:g}")
    if not 0 < alpha < 1:
        raise ConfigError(f"--alpha must be between 0 and 1, got {alpha:g}")
    if fmt not in COMPARE_FORMATS:
        raise UnknownNameError("format", fmt, COMPARE_FORMATS)


def compare_results(
    run: ResultSet,
    reference: ResultSet,
    *,
    benchmark: str = DEFAULT_BENCHMARK,
    task_types: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    allow_drift: bool = False,
    allow_metric_change: bool = False,
    per_query: bool = False,
    require_significant: bool = False,
    alpha: float = DEFAULT_ALPHA,
    worst: int = DEFAULT_WORST,
    gate: str = "task",
) -> Comparison:
    """Compare two result sets on the chosen tasks (default: every benchmark task the
    reference has a score for, narrowed by ``task_types``); tasks whose run score is another
    computation than the reference's count only with ``allow_metric_change``.

    ``per_query``: compare the tasks both sides kept per-query evidence for query by query
    (the ``worst`` queries that lost most, counts, a paired permutation test).
    ``require_significant``: a drop beyond the tolerance is a regression only when that test
    gives p < ``alpha`` (tasks without evidence on both sides are gated as usual, with a note).
    """
    check_options(tolerance=tolerance, alpha=alpha, gate=gate)
    spec = get_benchmark_spec(benchmark)
    chosen = selected_tasks(spec.name, tasks, task_types)
    rows, no_reference = _task_rows(run, reference, chosen, tolerance, allow_metric_change)
    # drift only on the tasks both sides scored: a task neither compared decides nothing
    drift, notes = check_drift(run, reference, [t.task for t in rows if t.run is not None])
    in_benchmark = {bt.name for bt in spec.tasks}
    whole = [bt.name for bt in chosen if bt.name not in in_benchmark]
    if whole:
        notes.append(
            f"Not in {spec.name}, so compared on every split and subset mteb gives them: "
            f"{', '.join(whole)}."
        )
    if drift and not allow_drift:
        listing = "; ".join(d.describe() for d in drift)
        raise DriftError(
            f"Run and reference differ in settings that change scores ({listing}). "
            "Compare runs made with the same settings, or pass --allow-drift."
        )
    if tasks and no_reference:
        raise ResultsError(
            f"The reference {reference.ref} has no score for {', '.join(no_reference)}; "
            "choose a reference that has them."
        )
    if not rows:
        raise ResultsError(
            f"The reference {reference.ref} has no score for any selected task of {spec.name}."
        )
    if no_reference:
        notes.append(
            f"Not compared ({len(no_reference)} selected tasks the reference has no score "
            f"for): {', '.join(no_reference)}."
        )
    notes += _metric_notes(rows, allow_metric_change)
    if run.model != reference.model:
        notes.append(
            f"Different models: the run is {run.model}, the reference {reference.model}; the "
            "verdict compares their scores, not a model with itself."
        )
    queries, suite = {}, None
    if per_query or require_significant or gate != "task":
        found = compare_queries(run, reference, [t.task for t in rows], worst=worst)
        queries = found.tasks
        scored = {t.task for t in rows if t.run is not None}
        ranked = [bt.name for bt in chosen if bt.ranked and bt.name in scored]
        notes += missing_evidence_note(run, reference, ranked, queries)
        if found.suite is not None:
            suite = _suite_verdict(
                found.suite, queries, rows, tolerance, alpha, require_significant
            )
    if require_significant and gate != "suite":
        rows = [significance_status(t, queries.get(t.task), alpha) for t in rows]
        notes += significance_notes(rows, queries)
    if gate != "task" and suite is None:
        raise ResultsError(
            f"--gate {gate} needs per-query evidence of some compared task on both sides; "
            "none has it. Gate per task (--gate task)."
        )
    if gate == "suite":  # a task's drop beyond the tolerance is reported, not gated
        rows = [
            dataclasses.replace(t, status="gated by suite") if t.status == "REGRESSION" else t
            for t in rows
        ]
    return Comparison(
        run=run,
        reference=reference,
        benchmark=spec.name,
        tolerance=tolerance,
        tasks=rows,
        drift=drift,
        notes=notes,
        allow_metric_change=allow_metric_change,
        queries=queries,
        alpha=alpha if require_significant else None,
        suite=suite,
        gate=gate,
    )


def _suite_verdict(
    test: SuiteQueryDiff,
    queries: dict[str, TaskQueryDiff],
    rows: list[TaskDelta],
    tolerance: float,
    alpha: float,
    require_significant: bool,
) -> SuiteVerdict:
    """The suite's change in the mean of its tasks' scores, and its status under the gate."""
    deltas = [t.delta for t in rows if t.task in test.tasks and t.delta is not None]
    delta = sum(deltas) / len(deltas) if deltas else 100 * test.mean_delta
    status = _status(delta, 0.0, tolerance)
    if status == "REGRESSION" and require_significant and test.p_value >= alpha:
        status = NOT_SIGNIFICANT
    moved = tuple(t for t in test.tasks if t in queries and queries[t].p_value < alpha)
    return SuiteVerdict(test, delta, status, moved)


def _task_rows(
    run: ResultSet,
    reference: ResultSet,
    chosen: Sequence[Any],
    tolerance: float,
    allow_metric_change: bool,
) -> tuple[list[TaskDelta], list[str]]:
    """One row per chosen task the reference has a score for, the run read in the
    reference's metric; and the chosen tasks the reference has no score for."""
    rows: list[TaskDelta] = []
    no_reference = []
    for bt in chosen:
        ref_score = score_task(reference, bt)
        if ref_score.score is None:
            no_reference.append(bt.name)
            continue
        run_score = score_task(run, bt, ref_score.metric)
        versions = (mteb_version(run, run_score), mteb_version(reference, ref_score))
        mteb_change = (
            ""
            if run_score.score is None
            else (mteb_difference(run_score.metric or "", *versions) or "")
        )
        changed = run_score.changed_from is not None or bool(mteb_change)
        ungated = changed and not allow_metric_change
        rows.append(
            TaskDelta(
                task=bt.name,
                type=bt.type,
                run=run_score.score,
                reference=ref_score.score,
                status=_status(run_score.score, ref_score.score, tolerance, ungated),
                run_metric=run_score.metric,
                reference_metric=ref_score.metric,
                note=run_score.note if run_score.score is None else "",
                metric_changed=changed,
                mteb_change=mteb_change,
            )
        )
    return rows, no_reference


def _metric_notes(rows: list[TaskDelta], allowed: bool) -> list[str]:
    """One note per pair of different computations, naming the tasks and the difference."""
    groups: dict[tuple[str, str], list[str]] = {}
    by_version: dict[str, list[str]] = {}
    for t in rows:
        if t.mteb_change:
            by_version.setdefault(t.mteb_change, []).append(t.task)
        elif t.metric_changed and t.run_metric and t.reference_metric:
            groups.setdefault((t.run_metric, t.reference_metric), []).append(t.task)
    gate = (
        "counted in the verdict (--allow-metric-change)"
        if allowed
        else "not gated; --allow-metric-change counts them"
    )
    return [
        f"Different metrics on {', '.join(names)}: run {run_metric}, reference {ref_metric} "
        f"({metric_difference(run_metric, ref_metric)}); {gate}."
        for (run_metric, ref_metric), names in groups.items()
    ] + [
        f"Metric computed differently on {', '.join(names)}: {why}; {gate}."
        for why, names in by_version.items()
    ]


def compare(run: str, reference: str, **options: Any) -> Comparison:
    """Compare a run folder with a reference folder or shipped baseline (``published:<model>``);
    ``options`` are those of :func:`compare_results`."""
    return compare_results(resolve_one(run, "run"), resolve_one(reference, "reference"), **options)


# ---------------------------------------------------------------------------- rendering


def _verdict(c: Comparison) -> str:
    ungated = ""
    if c.not_gated:
        names = ", ".join(t.task for t in c.not_gated)
        ungated = f" Not gated (metric changed): {names}."
    if c.passed:
        significant = "" if c.alpha is None else f" by a significant drop (p < {c.alpha:g})"
        below = f"more than {c.tolerance:g} below the reference{significant}"
        gated = len(c.tasks) - len(c.not_gated)
        what = [f"{gated} task(s), none {below}"] if c.gate != "suite" else []
        if c.gate != "task":
            suite = format_score(c.suite.delta, 2, signed=True)
            what.insert(
                0, f"the suite's mean ({suite}, p = {c.suite.test.p_value:.4f}) not {below}"
            )
        quiet = [t.task for t in c.tasks if t.status == NOT_SIGNIFICANT]
        if quiet:
            what.append(f"not significant: {', '.join(quiet)}")
        return f"PASS: {'; '.join(what)}." + ungated
    parts = []
    if c.suite_failed:
        parts.append(f"the suite's mean fell {format_score(c.suite.delta, 2, signed=True)}")
    if c.regressions:
        parts.append(
            f"{len(c.regressions)} regression(s) ("
            + ", ".join(f"{t.task} {format_score(t.delta, 2, signed=True)}" for t in c.regressions)
            + ")"
        )
    if c.missing:
        parts.append(
            f"{len(c.missing)} missing task(s) (" + ", ".join(t.task for t in c.missing) + ")"
        )
    return "FAIL: " + "; ".join(parts) + "." + ungated


def _render_report(c: Comparison, decimals: int, md: bool) -> str:
    """The text report (header, aligned per-task table, drift, notes, verdict), or with ``md``
    the Markdown one (for a CI job summary)."""
    header = ["Task", "Type", "Run", "Reference", "Delta", "Status"]
    body = [
        [
            t.task,
            t.type,
            format_score(t.run, decimals),
            format_score(t.reference, decimals),
            format_score(t.delta, decimals, signed=True),
            t.status + (f" ({t.note})" if t.note else ""),
        ]
        for t in c.tasks
    ]
    if md:
        out = [
            (
                f"**{'PASS' if c.passed else 'FAIL'}**: `{c.run.ref}` vs `{c.reference.ref}` "
                f"({c.benchmark}, tolerance {c.tolerance:g} points x100)"
            ),
            "",
            "| " + " | ".join(header) + " |",
            "|---|---|---:|---:|---:|---|",
            *("| " + " | ".join(r) + " |" for r in body),
            "",
        ]
    else:
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

        def line(cells: list[str]) -> str:
            return "  ".join(
                cell.rjust(w) if i in (2, 3, 4) else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        out = [
            f"Run:       {c.run.ref}  ({c.run.path})",
            f"Reference: {c.reference.ref}  ({c.reference.path})",
            (
                f"Benchmark: {c.benchmark}; tolerance {c.tolerance:g} points (x100) below the "
                "reference"
            ),
            "",
            line(header),
            line(["-" * w for w in widths]),
            *(line(r) for r in body),
            "",
        ]
    bullet = "- " if md else ""
    out += [f"{bullet}settings drift (allowed): {d.describe()}" for d in c.drift]
    out += [f"{bullet or 'note: '}{n}" for n in c.notes]
    out += (query_markdown if md else query_text)(c.queries.values())
    if c.suite is not None:
        out += [("**Suite**: " if md else "") + c.suite.describe(decimals), ""]
    out.append(_verdict(c))
    return "\n".join(out) + "\n"


def _render_json(c: Comparison, decimals: int = 2) -> str:
    """Machine-readable report."""

    def r(v: float | None) -> float | None:
        return None if v is None else round_score(v, decimals)

    doc = {
        "passed": c.passed,
        "run": {"ref": c.run.ref, "path": str(c.run.path), "settings": c.run.settings},
        "reference": {
            "ref": c.reference.ref,
            "path": str(c.reference.path),
            "settings": c.reference.settings,
        },
        "benchmark": c.benchmark,
        "tolerance": c.tolerance,
        "tasks": [
            {
                "task": t.task,
                "type": t.type,
                "run": r(t.run),
                "reference": r(t.reference),
                "delta": r(t.delta),
                "status": t.status,
                "run_metric": t.run_metric,
                "reference_metric": t.reference_metric,
                "note": t.note,
                "metric_changed": t.metric_changed,
                "mteb_change": t.mteb_change,
            }
            for t in c.tasks
        ],
        "regressions": [t.task for t in c.regressions],
        "missing": [t.task for t in c.missing],
        "not_gated": [t.task for t in c.not_gated],
        "drift": [dataclasses.asdict(d) for d in c.drift],
        "notes": c.notes,
        "alpha": c.alpha,
        "gate": c.gate,
        "per_query": {task: diff.as_dict() for task, diff in c.queries.items()},
        "suite": None if c.suite is None else c.suite.as_dict(),
    }
    return json.dumps(doc, indent=2, default=str) + "\n"


def render_comparison(c: Comparison, fmt: str = "text", decimals: int = 2) -> str:
    """Render a comparison as text, json or markdown."""
    check_options(fmt=fmt)
    if fmt == "json":
        return _render_json(c, decimals)
    return _render_report(c, decimals, md=fmt == "markdown")


__all__ = [
    "COMPARE_FORMATS",
    "GATES",
    "DEFAULT_ALPHA",
    "DEFAULT_TOLERANCE",
    "Comparison",
    "SettingDiff",
    "SuiteVerdict",
    "TaskDelta",
    "check_drift",
    "check_options",
    "compare",
    "compare_results",
    "render_comparison",
]
