"""Which number a score is: the metric behind each task's score, and how to read it.

The published MTEB(eng, v1) scores were made with mteb 1.x, whose metric names and in places
computations differ from mteb 2's: ``METRIC_PAIRS`` says, as data, which mteb 2 field matches
each published metric, and :func:`score_task` reads a run in its reference's computation (or
flags it, ``TaskScore.changed_from``). ``MTEB_CHECKED`` and ``_METRIC_CHANGES`` say which mteb 2
versions compute a field alike (``mteb_difference``).

Example::

    from linq_eval.results.metrics import score_task, published_metric
    score = score_task(result_set, task_info, metric=published_metric(task_info))
    score.score, score.metric, score.changed_from
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from linq_eval.registry import TaskInfo
from linq_eval.results.result_file import ResultFile
from linq_eval.run_record import task_settings

if TYPE_CHECKING:
    from linq_eval.results.reading import ResultSet

CARD_ERA_BENCHMARKS = frozenset({"MTEB(eng, v1)"})
"""Benchmarks of the model card's era, whose published scores were made with mteb 1.x: their
tables show, for every row, the computation the published scores were made with, in the card's
layout (``linq_eval.results.tables``)."""


MTEB_CHECKED = ("2.26.0", "2.26.24")
"""The first and last mteb versions whose metric code (``mteb/_evaluators``, ``mteb/abstasks``)
was read for ``METRIC_PAIRS``: identical in every version between them except for
``_METRIC_CHANGES``. ``pyproject.toml`` allows ``mteb>=2.26,<2.27``; a later 2.26 release is
one computation with these only once its code has been read and this range extended."""


@dataclass(frozen=True)
class MetricPair:
    """A published (mteb 1.x) metric and the field of an mteb 2 result that corresponds to it."""

    task_type: str
    """mteb task type the pair applies to."""
    published: str
    """Metric name in the published (card-era) result files."""
    current: str
    """Field of an mteb 2 result file (as the versions ``mteb`` compute it)."""
    relation: Literal["same", "changed"]
    """``same``: one computation under two names; ``changed``: the numbers can differ."""
    source: str
    """Where the correspondence is established."""
    tasks: tuple[str, ...] = ()
    """Only these tasks of the type (empty: every task of the type not named elsewhere)."""
    difference: str = ""
    """What can still differ between the numbers (for a ``same`` pair: a tiny residual)."""
    mteb: tuple[str, str] = MTEB_CHECKED
    """The mteb versions (first, last) known to compute ``current`` so."""


_RERANKING_RESIDUAL = (
    "mteb 2 rounds to 5 decimals (0.0005 points x100); where two or more positive candidates "
    "of a sample share a score (the same text listed twice, or float32 rounding making two "
    "near-equal similarities equal), scikit-learn credits each with the precision at the end "
    "of the tied group while pytrec_eval ranks them one by one (and a tied negative first, "
    "by doc id); one positive tied with negatives gives the same AP in both"
)


@dataclass(frozen=True)
class _MetricChange:
    """A result field whose computation changed in one mteb release (same name, other number)."""

    fields: str
    """Regular expression matching the changed fields' names."""
    since: str
    """The first mteb version computing the field the new way."""
    what: str
    source: str
    """Where it is established."""


_METRIC_CHANGES: tuple[_MetricChange, ...] = (
    _MetricChange(
        r"^(max_over_subqueries_)?nauc_",
        "2.26.5",
        "nAUC abstention metrics of retrieval and reranking: a group of equal confidence "
        "scores is scored by its mean metric (expected value under random tie-breaking); "
        "before, by the order of the queries",
        "mteb 2.26.4 and 2.26.5 _evaluators/retrieval_metrics.py nauc (mteb pull request "
        "5613); the only metric change between 2.26.0 and 2.26.24",
    ),
)
"""Changes of a field's computation within mteb 2, newest last."""

METRIC_PAIRS: tuple[MetricPair, ...] = (
    MetricPair(
        "PairClassification",
        "cos_sim_ap",
        "cosine_ap",
        "same",
        "mteb 1.x PairClassificationEvaluator: cos_sim_ap = sklearn average_precision_score "
        "over cosine similarities; mteb 2.26 AbsTaskPairClassification (its _compute_metrics): "
        "cosine_ap, the same call on the same scores (max_ap takes the best of cosine, dot, "
        "Euclidean, Manhattan and the model's similarity)",
    ),
    MetricPair(
        "STS",
        "cos_sim_spearman",
        "cosine_spearman",
        "same",
        "mteb 1.x STSEvaluator and mteb 2.26 AbsTaskSTS: Spearman correlation of cosine "
        "similarities with the gold scores; renamed only",
    ),
    MetricPair(
        "Summarization",
        "cos_sim_spearman",
        "cosine_spearman",
        "same",
        "mteb 1.x and mteb 2.26 SummarizationEvaluator: per text, Spearman correlation of "
        "the human scores with each machine summary's highest cosine similarity to the human "
        "summaries, averaged over texts; renamed only",
    ),
    MetricPair(
        "Reranking",
        "map",
        "max_over_subqueries_map_at_1000",
        "same",
        "mteb 1.x RerankingEvaluator (cosine with the closest subquery, sklearn AP per sample, "
        "samples without a positive or a negative dropped) and mteb 2.26 "
        "retrieval_metrics.max_over_subqueries (max over subqueries, pytrec_eval "
        "map_cut.1000); tests/test_metrics.py",
        tasks=("MindSmallReranking",),
        difference=_RERANKING_RESIDUAL,
    ),
    MetricPair(
        "Reranking",
        "map",
        "map_at_1000",
        "same",
        "mteb 1.x RerankingEvaluator (sklearn average_precision_score per sample, samples "
        "without a positive or a negative dropped) and mteb 2.26 calculate_retrieval_scores "
        "(pytrec_eval map_cut.1000 over the candidates as AbsTaskReranking converts them: "
        "each listed candidate kept, the same samples dropped); tests/test_metrics.py",
        difference=_RERANKING_RESIDUAL,
    ),
)
"""Published metric <-> mteb 2 field, per task type. A task type not listed here reports the
same metric under the same name in both eras (accuracy, v_measure, ndcg_at_10). The run's own
metric is its task's ``main_score``; ``results/per_query.py`` ``_MEASURES`` is not a copy of
this table but how pytrec_eval names mteb 2's metrics, to compute them per query."""


def pair_for(task: TaskInfo) -> MetricPair | None:
    """The metric pair of a task (a pair naming the task wins over one for its whole type)."""
    of_type = [p for p in METRIC_PAIRS if p.task_type == task.type]
    for p in of_type:
        if task.name in p.tasks:
            return p
    return next((p for p in of_type if not p.tasks), None)


def published_metric(task: TaskInfo) -> str:
    """The metric the published (card-era) score of a task was made with."""
    pair = pair_for(task)
    return pair.published if pair else task.main_score


def table_metric(benchmark: str, task: TaskInfo) -> str | None:
    """The metric a table of ``benchmark`` shows for ``task`` (None: mteb's main score)."""
    return published_metric(task) if benchmark in CARD_ERA_BENCHMARKS else None


def same_computation(a: str, b: str) -> bool:
    """Whether two metric names are one computation (equal, or a ``same`` pair)."""
    if a == b:
        return True
    return any(p.relation == "same" and {a, b} == {p.published, p.current} for p in METRIC_PAIRS)


def changed_pair(a: str, b: str) -> MetricPair | None:
    """The ``changed`` pair linking two metric names, if any."""
    for p in METRIC_PAIRS:
        if p.relation == "changed" and {a, b} == {p.published, p.current}:
            return p
    return None


def metric_difference(a: str, b: str) -> str:
    """Why two metric names are not the same number."""
    pair = changed_pair(a, b)
    return pair.difference if pair and pair.difference else "different computations"


def mteb_release(version: str) -> tuple[int, ...] | None:
    """``2.26.24`` as (2, 26, 24); None for a version that is not plain numbers (a dev build)."""
    match = re.fullmatch(r"(\d+)\.(\d+)(?:\.(\d+))?", version.strip())
    return tuple(int(p or 0) for p in match.groups()) if match else None


def mteb_difference(metric: str, a: str | None, b: str | None) -> str | None:
    """Why field ``metric`` made by mteb version ``a`` may not be the number mteb ``b`` makes:
    a version outside ``MTEB_CHECKED``, or a ``_METRIC_CHANGES`` entry between the two (None:
    the same computation, a version unknown, or an mteb 1.x file, which ``METRIC_PAIRS`` pairs)."""
    if not a or not b or a == b:
        return None
    ra, rb = mteb_release(a), mteb_release(b)
    if (ra and ra[0] < 2) or (rb and rb[0] < 2):
        return None  # an mteb 1.x file: METRIC_PAIRS says which mteb 2 field matches it
    low, high = (mteb_release(v) for v in MTEB_CHECKED)
    unchecked = [v for v, r in ((a, ra), (b, rb)) if r is None or not low <= r <= high]
    if unchecked:
        return (
            f"mteb {a} vs {b}: metric code checked for mteb {MTEB_CHECKED[0]} to "
            f"{MTEB_CHECKED[1]} only, not for {', '.join(unchecked)}"
        )
    first, last = sorted((ra, rb))
    for change in _METRIC_CHANGES:
        since = mteb_release(change.since)
        if re.search(change.fields, metric) and first < since <= last:
            return f"mteb {a} vs {b}: {metric} changed in {change.since} ({change.what})"
    return None


def metric_label(benchmark: str, task: TaskInfo) -> str:
    """The metric a table shows for ``task`` (``cos_sim_ap / cosine_ap`` for a renamed one)."""
    wanted = table_metric(benchmark, task)
    pair = pair_for(task)
    if wanted and pair and pair.published == wanted:
        return f"{pair.published} / {pair.current}"
    return wanted or task.main_score


@dataclass(frozen=True)
class TaskScore:
    """The score of one task in one result set."""

    task: str
    type: str
    score: float | None
    """Score x100, None when the result set has no complete score for the task."""
    metric: str | None = None
    """Name of the field the score was read from (``cos_sim_ap`` in a published file)."""
    note: str = ""
    """Why a score is missing, or how it was computed (``mean of 12 subforums``)."""
    wanted: str | None = None
    """The metric asked for, when the file holds no field with that computation."""
    result: ResultFile | None = field(default=None, compare=False, repr=False)
    """The result, filtered as the task is scored, its ``main_score`` the score's field."""

    @property
    def changed_from(self) -> str | None:
        """The metric asked for, when the score is another computation (else None)."""
        if self.wanted is None or self.metric is None:
            return None
        return None if same_computation(self.metric, self.wanted) else self.wanted


_NON_METRIC_KEYS = frozenset({"main_score", "hf_subset", "languages", "mteb_version"})


def _main_metric_name(result: ResultFile, expected: str) -> str:
    """The name of the field that a result file's main_score holds."""
    for entry in result.entries:
        main = entry.get("main_score")
        if expected in entry and entry[expected] == main:
            return expected
        for key, value in entry.items():
            if key not in _NON_METRIC_KEYS and isinstance(value, float) and value == main:
                return key
    return expected


def _field_for(result: ResultFile, metric: str) -> str | None:
    """The field of every score entry computing ``metric`` (its own name first)."""
    entries = result.entries
    if not entries:
        return None
    names = [metric] + sorted({k for e in entries for k in e} - {metric})
    for name in names:
        if name in _NON_METRIC_KEYS or not same_computation(name, metric):
            continue
        if all(isinstance(e.get(name), (int, float)) for e in entries):
            return name
    return None


def _complete_result(rs: ResultSet, task: TaskInfo) -> tuple[ResultFile | None, str]:
    """The task's result (an aggregate's the mean of its subtasks'), or None and why not."""
    result = rs.task_result(task.name)
    if result is not None or not task.is_aggregate:
        return result, "" if result is not None else "no result file"
    found = [r for r in (rs.task_result(n) for n in task.subtasks) if r is not None]
    if not found:
        return None, "no result file"
    if len(found) < len(task.subtasks):
        return None, f"only {len(found)}/{len(task.subtasks)} subtasks"
    return _combined(task, found), f"mean of its {len(task.subtasks)} subtask files"


def _combined(task: TaskInfo, parts: list[ResultFile]) -> ResultFile:
    """An aggregate's result from its subtasks' (mteb's ``AbsTaskAggregate``: per split, the
    mean over subtasks of each subtask's mean over its subsets, as one ``default`` subset)."""
    scores = {}
    for split in task.eval_splits:
        per_part = [part.scores.get(split, ()) for part in parts]
        if not all(per_part):
            continue  # a subtask without the split: the aggregate misses it
        fields = set.intersection(*(set(e) for entries in per_part for e in entries))
        numbers = {
            f: sum(sum(e[f] for e in entries) / len(entries) for entries in per_part)
            / len(per_part)
            for f in sorted(fields)
            if all(isinstance(e[f], (int, float)) for entries in per_part for e in entries)
        }
        scores[split] = ({**numbers, "hf_subset": "default", "languages": []},)
    versions = {p.mteb_version for p in parts}
    return ResultFile(task.name, scores, versions.pop() if len(versions) == 1 else None)


def mteb_version(rs: ResultSet, score: TaskScore) -> str | None:
    """The mteb version a task's score was made with: the run record's (the task's own
    settings), else the result file's ``mteb_version`` (None when neither records one)."""
    settings, _ = task_settings(rs.run_record, score.task)
    recorded = (settings or {}).get("mteb_version")
    return recorded or (score.result.mteb_version if score.result is not None else None)


def score_task(rs: ResultSet, task: TaskInfo, metric: str | None = None) -> TaskScore:
    """Score one task of a result set, filtered and averaged as mteb does, from the file's
    field with ``metric``'s computation, else (``changed_from``) or without one its main score."""
    result, note = _complete_result(rs, task)
    if result is None:
        return TaskScore(task.name, task.type, None, note=note)
    missing = result.missing(task)
    if missing:
        parts = ", ".join(f"{split}: {sorted(subsets)}" for split, subsets in missing.items())
        return TaskScore(task.name, task.type, None, note=f"missing {parts}")
    filtered = result.filtered(task)
    name = _main_metric_name(filtered, task.main_score)
    chosen = _field_for(filtered, metric) if metric else None
    if chosen is not None and chosen != name:
        filtered, name = filtered.with_main_score(chosen), chosen
    value = filtered.score()
    if math.isnan(value):
        return TaskScore(task.name, task.type, None, note="no main score", result=filtered)
    return TaskScore(
        task.name,
        task.type,
        value * 100,
        metric=name,
        note=note,
        wanted=metric if metric and chosen is None else None,
        result=filtered,
    )


__all__ = [
    "CARD_ERA_BENCHMARKS",
    "METRIC_PAIRS",
    "MTEB_CHECKED",
    "MetricPair",
    "TaskScore",
    "changed_pair",
    "metric_difference",
    "metric_label",
    "mteb_difference",
    "mteb_release",
    "mteb_version",
    "pair_for",
    "published_metric",
    "same_computation",
    "score_task",
    "table_metric",
]
