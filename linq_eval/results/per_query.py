"""Per-query evidence of retrieval and reranking tasks: what a run writes beside mteb's result
file, and how two runs' queries are compared.

For every retrieval-style task (mteb 2 evaluates reranking tasks as retrieval over their
candidates) a run keeps, per query, the task's main metric and the ids of its top-10 documents,
in ``<Task>.queries.json.gz`` beside ``<Task>.json`` (mteb's loaders only read ``*.json``). The
per-query values are computed from mteb's own predictions with pytrec_eval and the task's own
filters, so their mean is the task's main score.

Evidence is bound to the result it explains (``Binding``): the sha256 of the result file, its
main score, the hash of the task's score-deciding settings and the number of queries. Reading
it for a comparison (``read_bound_evidence``) checks all of them, and that each split's mean is
the result's score of that split: evidence that does not explain the result beside it (left
from an earlier result, edited, cut short) is refused with ``EvidenceError``, never used.

Comparing two runs, :func:`diff_task` pairs the queries, counts how many went up, down or stayed,
lists those that lost most (with the documents that entered or left their top 10) and gives a
paired sign-flip permutation test over queries, the significance test retrieval papers use.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytrec_eval

from linq_eval.atomic import atomic_write_bytes
from linq_eval.errors import EvidenceError, ResultsError
from linq_eval.results.result_file import ResultFile, read_result_file
from linq_eval.run_record import settings_hash

SUFFIX = ".queries.json.gz"
"""File name suffix of a task's per-query evidence (beside ``<Task>.json``)."""
_TOP_K = 10
"""Documents kept per query."""
_FORMAT_VERSION = 2
"""2: bound to its result (``Binding``); 1 (unbound) is refused."""
_MEAN_TOLERANCE = 1e-5
"""How far a split's mean over its queries may lie from the result's score of that split:
mteb stores scores to 6 decimals, and sums in another order."""
PERMUTATIONS = 10_000
"""Sign flips of the paired permutation test (p-values resolve to about 1e-4)."""
DEFAULT_WORST = 5
"""Queries that lost most, listed per task (``compare --per-query --worst``)."""

_MEASURES = {
    "ndcg_at": "ndcg_cut",
    "map_at": "map_cut",
    "recall_at": "recall",
    "precision_at": "P",
}
"""mteb metric prefix -> pytrec_eval measure (``ndcg_at_10`` -> ``ndcg_cut.10``).

Not a second home of which metric a task is scored by: that is the task's own ``main_score``
(mteb's metadata; evidence keeps it per query), and ``results/metrics.py`` ``METRIC_PAIRS``
says which mteb 2 field a published mteb 1.x metric corresponds to. This is only how
pytrec_eval spells mteb 2's metric names, so that it can compute them per query."""
_MEASURE_PATTERN = re.compile(rf"({'|'.join(_MEASURES)})_(\d+)")
_FALLBACK_METRIC = "ndcg_at_10"
"""Per-query metric of tasks whose main score pytrec_eval does not compute per query."""


def _pytrec_measure(metric: str) -> tuple[str, str] | None:
    """``(measure, result key)`` of pytrec_eval for an mteb metric name, or None."""
    match = _MEASURE_PATTERN.fullmatch(metric)
    if not match:
        return None
    name = _MEASURES[match.group(1)]
    return f"{name}.{match.group(2)}", f"{name}_{match.group(2)}"


@dataclass(frozen=True)
class QueryEvidence:
    """One query of one split: its text, its score on the task's metric, its top documents."""

    text: str
    score: float
    top: tuple[str, ...]


@dataclass
class EvidencePart:
    """The queries of one subset and split of a task."""

    subset: str
    split: str
    metric: str
    queries: dict[str, QueryEvidence] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.subset}/{self.split}"

    def mean(self) -> float | None:
        scores = [q.score for q in self.queries.values()]
        return float(np.mean(scores)) if scores else None


@dataclass(frozen=True)
class Binding:
    """What identifies the result a task's evidence explains."""

    result_file: str
    """The result file's name (``SciFact.json``, a subtask's own file for an aggregate)."""
    result_sha256: str
    """The sha256 of the result file's bytes as written."""
    main_score: float
    """The result's main score (mean over its splits and subsets, 0..1)."""
    settings_hash: str
    """``run_record.settings_hash`` of the task's score-deciding settings."""
    queries: int
    """Queries kept, over every split and subset."""


def bind(result_path: Path, settings: Mapping[str, Any], evidence: TaskEvidence) -> Binding:
    """The binding of ``evidence`` to the result file it explains and its settings."""
    return Binding(
        result_file=result_path.name,
        result_sha256=hashlib.sha256(result_path.read_bytes()).hexdigest(),
        main_score=read_result_file(result_path).score(),
        settings_hash=settings_hash(settings),
        queries=evidence.queries,
    )


@dataclass
class TaskEvidence:
    """Everything a run keeps per query of one task."""

    task: str
    parts: list[EvidencePart] = field(default_factory=list)
    binding: Binding | None = None
    """The result it explains (set before it is written)."""

    @property
    def queries(self) -> int:
        return sum(len(p.queries) for p in self.parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": _FORMAT_VERSION,
            "task": self.task,
            "binding": asdict(self.binding) if self.binding else None,
            "parts": [asdict(p) for p in self.parts],  # tuples are written as lists
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskEvidence:
        parts = [
            EvidencePart(
                p["subset"],
                p["split"],
                p["metric"],
                {
                    qid: QueryEvidence(q["text"], float(q["score"]), tuple(q["top"]))
                    for qid, q in p["queries"].items()
                },
            )
            for p in data["parts"]
        ]
        return cls(data["task"], parts, Binding(**data["binding"]))


def evidence_path(folder: Path, task: str) -> Path:
    """Where a task's evidence lies in a result folder."""
    return Path(folder) / f"{task}{SUFFIX}"


def write_evidence(folder: Path, evidence: TaskEvidence) -> Path:
    """Write ``evidence`` (bound to its result) atomically (gzip, reproducible bytes); returns
    the path."""
    if evidence.binding is None:
        raise ValueError(f"evidence of {evidence.task} is not bound to a result")
    path = evidence_path(folder, evidence.task)
    raw = json.dumps(evidence.as_dict(), ensure_ascii=False, separators=(",", ":")).encode()
    atomic_write_bytes(path, gzip.compress(raw, compresslevel=6, mtime=0))
    return path


_REWRITE = (
    "run the task again (linq-eval run ... --allow-settings-change replaces it; its evidence is "
    "written with it), or compare without --per-query."
)


def read_evidence(folder: Path, task: str) -> TaskEvidence | None:
    """A task's evidence from a result folder, or None when the run kept none.

    Raises ``EvidenceError`` naming the file when it is damaged: a comparison built on
    it would be wrong, so it is never skipped.
    """
    path = evidence_path(folder, task)
    if not path.is_file():
        return None
    try:
        data = json.loads(gzip.decompress(path.read_bytes()))
        found = data.get("format") if isinstance(data, dict) else None
        if found == 1:
            raise EvidenceError(
                f"{path}: per-query evidence written before evidence was bound to its result "
                f"(format 1): it cannot be told whether it explains {task}.json; {_REWRITE}"
            )
        if found != _FORMAT_VERSION:
            raise ValueError(f"format {found!r}")
        evidence = TaskEvidence.from_dict(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise EvidenceError(
            f"{path}: damaged per-query evidence, not a complete gzip file "
            f"({type(exc).__name__}: {exc}); {_REWRITE}"
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EvidenceError(
            f"{path}: not linq-eval's per-query evidence (format {_FORMAT_VERSION} expected; "
            f"{type(exc).__name__}: {exc}); {_REWRITE}"
        ) from None
    if evidence.task != task:
        raise EvidenceError(f"{path}: holds the evidence of {evidence.task!r}, not {task!r}.")
    return evidence


def read_bound_evidence(
    folder: Path, task: str, settings: Mapping[str, Any] | None
) -> TaskEvidence | None:
    """A task's evidence from a result folder, checked against the result it explains (None
    when the run kept none).

    ``settings``: the task's own score-deciding settings from the run record (None where the
    record keeps none for it). Raises ``EvidenceError`` naming the file and the mismatch when
    the result file is not the one the evidence was made from, the settings differ, its
    queries are not the ones the result was computed over, or a split's mean is not the
    result's score of that split.
    """
    evidence = read_evidence(folder, task)
    if evidence is None:
        return None
    path, binding = evidence_path(folder, task), evidence.binding
    assert binding is not None  # format 2 always has one
    result_path = Path(folder) / binding.result_file
    problem = _binding_problem(evidence, result_path, settings)
    if problem:
        raise EvidenceError(f"{path}: does not explain {result_path.name}: {problem}; {_REWRITE}")
    return evidence


def _binding_problem(
    evidence: TaskEvidence, result_path: Path, settings: Mapping[str, Any] | None
) -> str | None:
    binding = evidence.binding
    assert binding is not None
    if not result_path.is_file():
        return "that result file does not exist"
    sha = hashlib.sha256(result_path.read_bytes()).hexdigest()
    if sha != binding.result_sha256:
        return (
            f"the result file has changed since the evidence was written (sha256 "
            f"{binding.result_sha256[:12]} recorded, {sha[:12]} now): it is another result"
        )
    try:
        result = read_result_file(result_path)
    except ResultsError as exc:
        return str(exc)
    if not math.isclose(result.score(), binding.main_score, abs_tol=1e-9):
        return f"main score {binding.main_score} recorded, {result.score()} in the file"
    if settings is not None and settings_hash(settings) != binding.settings_hash:
        return (
            "made with other score-deciding settings than the run record gives the task "
            f"(settings hash {binding.settings_hash} recorded, {settings_hash(settings)} now)"
        )
    if evidence.queries != binding.queries:
        return f"{evidence.queries} queries, but its result was computed over {binding.queries}"
    return _mean_problem(evidence, result)


def _mean_problem(evidence: TaskEvidence, result: ResultFile) -> str | None:
    """Where a split's mean over the queries is not the result's score of that split."""
    for part in evidence.parts:
        entry = next(
            (e for e in result.scores.get(part.split, ()) if e.get("hf_subset") == part.subset),
            None,
        )
        value = None if entry is None else entry.get(part.metric)
        mean = part.mean()
        if not isinstance(value, (int, float)) or mean is None:
            return f"{part.key}: no {part.metric} in the result to compare with"
        if abs(mean - value) > _MEAN_TOLERANCE:
            return (
                f"{part.key}: the queries' mean {part.metric} is {mean:.6f}, the result's "
                f"{value:.6f}"
            )
    return None


# --------------------------------------------------------------------------- building


def _query_texts(queries: Any) -> dict[str, str]:
    """``{id: text}`` of an mteb queries dataset (a conversation's turns joined)."""
    texts: dict[str, str] = {}
    for row in queries:
        text = row.get("text")
        texts[str(row["id"])] = " | ".join(map(str, text)) if isinstance(text, list) else str(text)
    return texts


def _filtered_results(
    results: Mapping[str, Mapping[str, float]], ignore_identical_ids: bool, skip_first: bool
) -> dict[str, dict[str, float]]:
    """The ranking mteb scores: without a query's own id where the task says so, without the
    first result where it says so."""
    out: dict[str, dict[str, float]] = {}
    for qid, docs in results.items():
        ranked = sorted(docs.items(), key=lambda kv: kv[1], reverse=True)
        if ignore_identical_ids:
            ranked = [(d, s) for d, s in ranked if d != qid]
        if skip_first:
            ranked = ranked[1:]
        out[qid] = dict(ranked)
    return out


def part_evidence(
    results: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    query_texts: Mapping[str, str],
    *,
    metric: str,
    subset: str,
    split: str,
    ignore_identical_ids: bool = False,
    skip_first_result: bool = False,
) -> EvidencePart:
    """Per-query scores of one split from a ranking (``{qid: {doc id: score}}``) and qrels."""
    measure = _pytrec_measure(metric) or _pytrec_measure(_FALLBACK_METRIC)
    assert measure is not None
    if _pytrec_measure(metric) is None:
        metric = _FALLBACK_METRIC
    ranking = _filtered_results(results, ignore_identical_ids, skip_first_result)
    positives = {q: dict(d) for q, d in qrels.items() if any(v > 0 for v in d.values())}
    run = {q: docs for q, docs in ranking.items() if q in positives}
    scores = pytrec_eval.RelevanceEvaluator(positives, {measure[0]}).evaluate(run)
    part = EvidencePart(subset, split, metric)
    for qid, values in scores.items():
        top = tuple(list(ranking[qid])[:_TOP_K])
        part.queries[qid] = QueryEvidence(query_texts.get(qid, ""), values[measure[1]], top)
    return part


def task_evidence(task: Any, predictions: Mapping[str, Any]) -> TaskEvidence:
    """Evidence of a retrieval-style mteb task from its predictions file's content (mteb's
    ``{subset: {split: {qid: {doc id: score}}}}``) and the task's loaded data."""
    name = task.metadata.name
    evidence = TaskEvidence(name)
    for subset, splits in predictions.items():
        if subset == "mteb_model_meta" or not isinstance(splits, Mapping):
            continue
        for split, results in splits.items():
            data = task.dataset[subset][split]
            evidence.parts.append(
                part_evidence(
                    results,
                    data["relevant_docs"],
                    _query_texts(data["queries"]),
                    metric=task.metadata.main_score,
                    subset=subset,
                    split=split,
                    ignore_identical_ids=bool(getattr(task, "ignore_identical_ids", False)),
                    skip_first_result=bool(getattr(task, "skip_first_result", False)),
                )
            )
    return evidence


# --------------------------------------------------------------------------- comparing


@dataclass(frozen=True)
class QueryChange:
    """One query whose score moved between reference and run."""

    query_id: str
    text: str
    before: float
    after: float
    entered: tuple[str, ...]
    """Documents in the run's top 10 that were not in the reference's."""
    left: tuple[str, ...]
    """Documents in the reference's top 10 that are not in the run's."""

    @property
    def delta(self) -> float:
        return self.after - self.before


@dataclass(frozen=True)
class TaskQueryDiff:
    """Query-level comparison of one task between a run and a reference."""

    task: str
    metric: str
    queries: int
    up: int
    down: int
    unchanged: int
    mean_delta: float
    p_value: float
    worst: tuple[QueryChange, ...]
    only_in_one: int = 0
    """Queries present in one side only (left out of the comparison)."""

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)  # tuples are written as lists
        found["worst"] = found.pop("worst")  # last, after only_in_one
        return found


def paired_permutation_p(
    deltas: Sequence[float],
    permutations: int = PERMUTATIONS,
    seed: int = 0,
    weights: Sequence[float] | None = None,
) -> float:
    """Two-sided p-value of a paired sign-flip permutation test that the (``weights``-)
    weighted mean of ``deltas`` (run minus reference, per query) is zero: each query's
    difference keeps its size and weight and flips its sign at random. Deterministic for a
    given seed. With a suite's weights (each task's queries sharing its 1/T) the flips stay
    within each task: a task-stratified test of the suite's mean."""
    d = np.asarray(deltas, dtype=np.float64)
    if d.size == 0 or not np.any(d):
        return 1.0
    w = np.full(d.size, 1.0 / d.size) if weights is None else np.asarray(weights, np.float64)
    wd = w * d
    observed = abs(wd.sum())
    rng = np.random.default_rng(seed)
    extreme, done, block = 0, 0, max(1, 2_000_000 // d.size)
    while done < permutations:
        n = min(block, permutations - done)
        signs = rng.integers(0, 2, size=(n, d.size), dtype=np.int8) * 2 - 1
        extreme += int(np.sum(np.abs(signs @ wd) >= observed - 1e-12))
        done += n
    return (extreme + 1) / (permutations + 1)


def _pairs(
    run: TaskEvidence, ref: TaskEvidence
) -> tuple[list[tuple[str, Any, Any, float]], int, str]:
    """Queries of both sides matched by subset, split and id, each with its weight in the
    task's score (its part's share, 1/parts, over the part's matched queries); how many had no
    partner."""
    ref_parts = {p.key: p for p in ref.parts}
    matched: list[list[tuple[str, Any, Any]]] = []
    unmatched, metric = 0, ""
    for part in run.parts:
        other = ref_parts.get(part.key)
        if other is None:
            unmatched += len(part.queries)
            continue
        metric = part.metric
        found = []
        for qid, q in part.queries.items():
            if qid in other.queries:
                label = qid if len(run.parts) == 1 else f"{part.key}:{qid}"
                found.append((label, q, other.queries[qid]))
            else:
                unmatched += 1
        unmatched += len(set(other.queries) - set(part.queries))
        matched += [found] if found else []
    pairs = [(*pair, 1.0 / (len(matched) * len(part))) for part in matched for pair in part]
    return pairs, unmatched, metric


def diff_task(
    run: TaskEvidence,
    ref: TaskEvidence,
    *,
    worst: int = DEFAULT_WORST,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> TaskQueryDiff:
    """Compare two runs' evidence of one task query by query."""
    pairs, unmatched, metric = _pairs(run, ref)
    deltas = np.array([after.score - before.score for _, after, before, _ in pairs])
    weights = np.array([w for *_, w in pairs])
    changes = [
        QueryChange(
            qid,
            after.text or before.text,
            before.score,
            after.score,
            tuple(d for d in after.top if d not in before.top),
            tuple(d for d in before.top if d not in after.top),
        )
        for qid, after, before, _ in pairs
    ]
    losers = sorted((c for c in changes if c.delta < 0), key=lambda c: (c.delta, c.query_id))
    eps = 1e-9
    return TaskQueryDiff(
        task=run.task,
        metric=metric,
        queries=len(pairs),
        up=int(np.sum(deltas > eps)),
        down=int(np.sum(deltas < -eps)),
        unchanged=int(np.sum(np.abs(deltas) <= eps)),
        mean_delta=float(weights @ deltas) if deltas.size else 0.0,
        p_value=paired_permutation_p(deltas, permutations, seed, weights),
        worst=tuple(losers[:worst]),
        only_in_one=unmatched,
    )


@dataclass(frozen=True)
class SuiteQueryDiff:
    """The change of a suite's mean (the mean of its task scores, as the leaderboard averages)
    between a run and a reference, tested over every query of every task."""

    tasks: tuple[str, ...]
    """The tasks in it: those both sides kept evidence for."""
    queries: int
    """Queries paired, over all of them."""
    mean_delta: float
    """Run minus reference in the mean over tasks of each task's score (0..1 scale)."""
    p_value: float
    """Two-sided p-value of the task-stratified paired permutation test of ``mean_delta``."""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tasks": list(self.tasks)}


def diff_suite(
    evidence: Mapping[str, tuple[TaskEvidence, TaskEvidence]],
    *,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> SuiteQueryDiff | None:
    """Compare a suite of tasks (task -> (run's, reference's) evidence) on its mean.

    Each task counts 1/T (T tasks), and within a task each query its share of the task's
    score; the permutation test flips each query's difference with its weight, so every flip
    stays within its task. None without a task that has paired queries.
    """
    deltas, weights, tasks = [], [], []
    for task, (run, ref) in evidence.items():
        pairs, _, _ = _pairs(run, ref)
        if pairs:
            tasks.append(task)
            deltas.append([after.score - before.score for _, after, before, _ in pairs])
            weights.append([w for *_, w in pairs])
    if not tasks:
        return None
    d = np.concatenate([np.asarray(x) for x in deltas])
    w = np.concatenate([np.asarray(x) for x in weights]) / len(tasks)
    return SuiteQueryDiff(
        tasks=tuple(tasks),
        queries=int(d.size),
        mean_delta=float(w @ d),
        p_value=paired_permutation_p(d, permutations, seed, w),
    )


__all__ = [
    "DEFAULT_WORST",
    "PERMUTATIONS",
    "SUFFIX",
    "Binding",
    "EvidencePart",
    "QueryChange",
    "QueryEvidence",
    "SuiteQueryDiff",
    "TaskEvidence",
    "TaskQueryDiff",
    "diff_suite",
    "diff_task",
    "evidence_path",
    "paired_permutation_p",
    "part_evidence",
    "bind",
    "read_bound_evidence",
    "read_evidence",
    "task_evidence",
    "write_evidence",
]
