"""mteb's private names that linq-eval uses, each behind one function.

- ``mteb.results.task_result._read_run_settings_from_file`` and ``_write_and_merge_keyed_json``:
  mteb's ``run_settings.jsonl`` format, merged the way mteb merges it (``merge_run_settings``);
  fallback, when they are gone: plain JSONL lines, each distinct entry kept once;
- ``mteb._evaluators.retrieval_metrics.calculate_retrieval_scores`` and
  ``max_over_subqueries``: mteb's own retrieval and reranking scoring (the metric tests and
  per-query evidence tests set linq-eval's numbers beside them);
- ``AbsTaskReranking._process_example``: how mteb turns a reranking sample into candidates;
- ``AbsTask._calculate_descriptive_statistics_from_split``: mteb's statistics of one split;
- ``AbsTaskPairClassification._compute_metrics``: mteb's pair-classification metrics from
  scores (for the tests);
- ``mteb.abstasks.retrieval_dataset_loaders.RetrievalSplitData``: the keys of one split of a
  retrieval task (``retrieval_split`` checks ours against them; fallback, when the name is gone:
  the same plain dict);
- ``mteb.models.model_meta.ScoringFunction``: the cosine scoring of a ``ModelMeta`` (mteb
  compares it by identity: no fallback).

Example::

    from linq_eval.thirdparty import mteb_private
    mteb_private.missing_names()   # [] while every name is there
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from linq_eval.provenance import installed
from linq_eval.thirdparty import gone, lookup, require

_PRIVATE_NAMES = (
    ("mteb.results.task_result", "_read_run_settings_from_file"),
    ("mteb.results.task_result", "_write_and_merge_keyed_json"),
    ("mteb._evaluators.retrieval_metrics", "calculate_retrieval_scores"),
    ("mteb._evaluators.retrieval_metrics", "max_over_subqueries"),
    ("mteb.abstasks.text.reranking", "AbsTaskReranking._process_example"),
    ("mteb.abstasks.abstask", "AbsTask._calculate_descriptive_statistics_from_split"),
    ("mteb.abstasks.pair_classification", "AbsTaskPairClassification._compute_metrics"),
    ("mteb.abstasks.retrieval_dataset_loaders", "RetrievalSplitData"),
    ("mteb.models.model_meta", "ScoringFunction.COSINE"),
)
"""(module, attribute path) of every private name used here."""


def missing_names() -> list[str]:
    """The private names of ``_PRIVATE_NAMES`` the installed mteb lacks, with its version."""
    return gone("mteb", [f"{m}.{p}" for m, p in _PRIVATE_NAMES if lookup(m, p) is None])


def read_run_settings(path: Path) -> list[dict[str, Any]]:
    """The entries of an mteb ``run_settings.jsonl`` ([] when there is none)."""
    read = lookup(*_PRIVATE_NAMES[0])
    if read is not None:
        return list(read(path))
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [e for e in (json.loads(line) for line in lines if line.strip()) if isinstance(e, dict)]


def merge_run_settings(path: Path, entries: list[dict[str, Any]]) -> None:
    """Write ``entries`` into the JSONL file ``path``, merged with what it holds (mteb's merge:
    each task, split and subset once, with its latest settings)."""
    merge = lookup(*_PRIVATE_NAMES[1])
    if merge is not None:
        merge(path, entries)
        return
    kept: dict[str, None] = {}
    for entry in [*read_run_settings(path), *entries]:
        kept[json.dumps(entry, sort_keys=True, default=str)] = None
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def retrieval_scores(
    results: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    k_values: Sequence[int],
) -> Any:
    """mteb's ``RetrievalEvaluationResult`` of ``results`` against ``qrels`` (``.map``,
    ``.ndcg``, ``.all_scores`` per query)."""
    return require("mteb", *_PRIVATE_NAMES[2])(results, qrels, k_values)


def max_over_subqueries(
    qrels: Mapping[str, Mapping[str, int]],
    results: Mapping[str, Mapping[str, float]],
    k_values: Sequence[int],
) -> dict[str, float]:
    """mteb's scores after merging subqueries ``<id>_<n>`` by the max (MindSmallReranking)."""
    return require("mteb", *_PRIVATE_NAMES[3])(qrels, results, k_values)


def reranking_candidates(
    positive: list[Any], negative: list[Any], split: str, index: int
) -> dict[str, Any]:
    """mteb's conversion of one reranking sample: ``query_id``, ``doc_ids``,
    ``relevance_scores`` (every listed candidate under its own id)."""
    process = require("mteb", *_PRIVATE_NAMES[4])
    sample = {"query": "", "positive": positive, "negative": negative}
    return process(None, sample, split, index)


def descriptive_statistics(task: Any, split: str) -> dict[str, Any]:
    """mteb's descriptive statistics of one split of a loaded task."""
    require("mteb", *_PRIVATE_NAMES[5])
    return task._calculate_descriptive_statistics_from_split(split)


def pair_classification_metrics(
    task: Any, scores: dict[str, Any], labels: list[int]
) -> dict[str, float]:
    """mteb's metrics of a pair-classification task from its similarity scores and labels
    (``cosine_ap``, ``max_ap``, ...), without encoding anything."""
    require("mteb", *_PRIVATE_NAMES[6])
    return task._compute_metrics(scores, labels)


def retrieval_split(
    corpus: Any, queries: Any, relevant_docs: dict[str, dict[str, int]], top_ranked: Any
) -> dict[str, Any]:
    """One split of a retrieval task as ``AbsTaskRetrieval.load_data`` builds it (mteb's
    ``RetrievalSplitData``, a ``TypedDict``); an error naming the installed mteb when mteb
    declares other keys."""
    split = {
        "corpus": corpus,
        "queries": queries,
        "relevant_docs": relevant_docs,
        "top_ranked": top_ranked,
    }
    shape = lookup(*_PRIVATE_NAMES[7])
    if shape is not None and set(shape.__annotations__) != set(split):
        raise RuntimeError(
            f"mteb {installed('mteb')} holds a retrieval split as "
            f"{sorted(shape.__annotations__)}, not {sorted(split)}"
        )
    return split


def cosine_scoring() -> Any:
    """mteb's ``ScoringFunction.COSINE``, for a ``ModelMeta``'s ``similarity_fn_name``."""
    return require("mteb", *_PRIVATE_NAMES[8])


__all__ = [
    "cosine_scoring",
    "descriptive_statistics",
    "max_over_subqueries",
    "merge_run_settings",
    "missing_names",
    "pair_classification_metrics",
    "read_run_settings",
    "reranking_candidates",
    "retrieval_scores",
    "retrieval_split",
]
