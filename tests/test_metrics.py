"""The metric pairs: published (mteb 1.x) metrics and the mteb 2 fields that correspond.

The Reranking finding is established here, on constructed data: mteb 1.x's RerankingEvaluator
(scikit-learn average precision per sample, samples without a positive or a negative dropped,
max over subqueries for MindSmall) and mteb 2.26's pytrec_eval ``map_cut.1000`` over the
converted candidate lists (mteb's own conversion and scoring, through
``linq_eval.thirdparty.mteb_private``) give the same number to mteb's 5 decimals on untied
scores. They differ only where two or more positives of one sample share a score (the same
text listed twice; or float32 rounding: two similarities 3e-8 apart can round to one float32
depending on the BLAS's summation order, which is why the similarities here are float64 and
every sample is checked to be untied); a single positive tied with negatives gives the same AP.
"""

from __future__ import annotations

import csv
from typing import Any

import numpy as np
import pytest
from conftest import PUBLISHED_SCORES, shared
from sklearn.metrics import average_precision_score

from linq_eval.results.metrics import (
    METRIC_PAIRS,
    changed_pair,
    pair_for,
    published_metric,
    same_computation,
)
from linq_eval.results.tables import get_benchmark_spec
from linq_eval.thirdparty import mteb_private

Sample = dict[str, Any]
"""``{"query": [subquery vectors], "positive": [vectors], "negative": [vectors]}``."""


def card_era_map(samples: list[Sample]) -> float:
    """mteb 1.x RerankingEvaluator: per sample, cosine of each candidate with the closest
    subquery, scikit-learn AP over the candidates; samples lacking a positive or a negative
    dropped; the mean."""
    aps = []
    for s in samples:
        if not s["positive"] or not s["negative"]:
            continue
        docs = np.array(s["positive"] + s["negative"])
        sims = (np.array(s["query"]) @ docs.T).max(axis=0)
        relevant = [True] * len(s["positive"]) + [False] * len(s["negative"])
        aps.append(average_precision_score(relevant, sims))
    return float(np.mean(aps))


def mteb2_map(samples: list[Sample]) -> tuple[float, float]:
    """mteb 2.26 on the same samples: ``map_at_1000`` (first subquery) and
    ``max_over_subqueries_map_at_1000`` (every subquery), with mteb's conversion and scoring."""
    from mteb.abstasks.text.reranking import AbsTaskReranking

    k_values = list(AbsTaskReranking.k_values)  # mteb's (1, 3, ..., 1000)

    kept = [s for s in samples if s["positive"] and s["negative"]]  # mteb's conversion filter
    qrels: dict[str, dict[str, int]] = {}
    first: dict[str, dict[str, float]] = {}
    every: dict[str, dict[str, float]] = {}
    sub_qrels: dict[str, dict[str, int]] = {}
    for i, s in enumerate(kept):
        converted = mteb_private.reranking_candidates(s["positive"], s["negative"], "test", i)
        qid, ids = converted["query_id"], converted["doc_ids"]
        qrels[qid] = dict(zip(ids, converted["relevance_scores"], strict=True))
        docs = np.array(s["positive"] + s["negative"])
        for k, sub in enumerate(s["query"]):
            sims = docs @ np.array(sub)
            scores = {d: float(v) for d, v in zip(ids, sims, strict=True)}
            every[f"{qid}_{k}"] = scores
            sub_qrels[f"{qid}_{k}"] = qrels[qid]
            if k == 0:
                first[qid] = scores
    plain = mteb_private.retrieval_scores(first, qrels, k_values).map["MAP@1000"]
    merged = mteb_private.max_over_subqueries(sub_qrels, every, k_values)
    merged = merged["max_over_subqueries_map_at_1000"]
    return plain, merged


def _unit(rng: np.random.Generator, n: int, dim: int = 32) -> list[np.ndarray]:
    """Unit vectors in float64: float32 similarities of two candidates can round to one
    value or not depending on the BLAS's summation order (a tie in one path, none in another)."""
    v = rng.normal(size=(n, dim))
    return list(v / np.linalg.norm(v, axis=1, keepdims=True))


def constructed(seed: int, n: int = 300, subqueries: int = 1) -> list[Sample]:
    """Reranking samples like SciDocsRR's (5 positives in 30) and MindSmall's (1-3 positives,
    up to 60 candidates, several subqueries), some without a positive or a negative."""
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n):
        n_pos, n_neg = int(rng.integers(0, 6)), int(rng.integers(0, 55))
        query = _unit(rng, subqueries)
        # positives lean towards the query, as a useful model's would
        pos = [p + 0.3 * query[0] for p in _unit(rng, n_pos)]
        samples.append({"query": query, "positive": pos, "negative": _unit(rng, n_neg)})
    assert any(not s["positive"] for s in samples) and any(not s["negative"] for s in samples)
    return samples


def assert_untied(samples: list[Sample], gap: float = 1e-9) -> None:
    """No two candidates of a sample within ``gap`` of each other (max over subqueries)."""
    for s in samples:
        docs = s["positive"] + s["negative"]
        if len(docs) < 2:
            continue
        sims = np.sort((np.array(s["query"]) @ np.array(docs).T).max(axis=0))
        assert np.diff(sims).min() > gap, "constructed scores tie: the premise does not hold"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reranking_map_agrees_on_untied_scores(seed):
    samples = constructed(seed)
    assert_untied(samples)
    card = card_era_map([{**s, "query": s["query"][:1]} for s in samples])
    plain, _ = mteb2_map(samples)
    assert 0.2 < card < 0.95
    assert plain == pytest.approx(card, abs=5e-6)  # mteb 2 rounds to 5 decimals


def test_mindsmall_max_over_subqueries_agrees_on_untied_scores():
    samples = constructed(3, subqueries=3)
    assert_untied(samples)
    _, merged = mteb2_map(samples)
    assert merged == pytest.approx(card_era_map(samples), abs=5e-6)


def test_reranking_map_differs_only_where_two_positives_tie_with_a_negative():
    """Ties come from the same text listed more than once (same embedding, same score), or
    from float32 rounding. One positive tied with negatives: both give the same AP. Two tied
    positives (with or without a tied negative): scikit-learn credits both with the precision
    at the end of the group (2/3), pytrec_eval ranks them one by one (7/12)."""
    rng = np.random.default_rng(4)
    q, doc, other = _unit(rng, 1), *_unit(rng, 2)
    one = {"query": q, "positive": [doc], "negative": [doc, other]}
    assert mteb2_map([one])[0] == pytest.approx(card_era_map([one]), abs=5e-6)
    two = {"query": q, "positive": [doc, doc], "negative": [doc]}
    assert card_era_map([two]) == pytest.approx(2 / 3)
    assert mteb2_map([two])[0] == pytest.approx(7 / 12, abs=1e-5)
    # two tied positives below a negative, no negative in the tie: 2/3 each against 1/2, 2/3
    above = {"query": q, "positive": [doc, doc], "negative": [q[0]]}
    assert card_era_map([above]) == pytest.approx(2 / 3)
    assert mteb2_map([above])[0] == pytest.approx(7 / 12, abs=1e-5)
    samples = [s for s in constructed(5) if s["positive"] and s["negative"]]
    first = samples[0]
    dup = first["positive"][0]
    samples[0] = {
        **first,
        "positive": first["positive"] + [dup],
        "negative": [*first["negative"], dup],
    }
    assert abs(mteb2_map(samples)[0] - card_era_map(samples)) > 1e-5


def test_same_pairs_are_one_computation_in_mteb_2():
    """Each ``same`` pair's mteb 2 field is what mteb 2 computes for the published metric:
    PairClassification's through mteb 2's own evaluator against mteb 1.x's definition of
    ``cos_sim_ap`` (scikit-learn AP of the cosine scores); the others are mteb 2's main score of
    every task of their type, with the published metric as the reference CSV's."""
    import mteb

    rng = np.random.default_rng(0)
    labels = [int(x) for x in rng.integers(0, 2, 200)]
    cosine = rng.normal(size=200) + np.array(labels)
    distances = {  # the dot products separate the classes: max_ap is theirs, not cosine's
        "similarity_scores": -cosine,
        "cosine_scores": cosine,
        "manhattan_distances": cosine,
        "euclidean_distances": cosine,
        "dot_scores": np.array(labels, dtype=float),
    }
    task = mteb.get_task("SprintDuplicateQuestions")  # its evaluator, no data loaded
    mteb2 = mteb_private.pair_classification_metrics(task, distances, labels)
    (pair_classification,) = [p for p in METRIC_PAIRS if p.task_type == "PairClassification"]
    assert mteb2[pair_classification.current] == pytest.approx(
        average_precision_score(labels, cosine)
    )
    assert mteb2["max_ap"] == 1.0  # mteb 2's main score is another number

    spec = get_benchmark_spec()
    with shared(PUBLISHED_SCORES).open(encoding="utf-8") as f:
        published = {rec["task"]: rec["main_metric"] for rec in csv.DictReader(f)}
    for pair in METRIC_PAIRS:
        tasks = [t for t in spec.tasks if pair_for(t) is pair]
        assert tasks, pair
        for t in tasks:
            assert published[t.name] == pair.published, (pair, t.name)
            if pair is not pair_classification:
                assert t.main_score == pair.current, (pair, t.name)
    assert all(p.source for p in METRIC_PAIRS)
    assert all(p.difference for p in METRIC_PAIRS if p.relation == "changed")
    assert same_computation("cosine_ap", "cos_sim_ap") and same_computation("map", "map_at_1000")
    assert (
        not same_computation("max_ap", "cos_sim_ap")
        and changed_pair("max_ap", "cos_sim_ap") is None
    )


def test_pairs_cover_the_published_metrics_and_mteb_main_scores():
    """Each task's published metric (the reference CSV) and mteb 2.26 main score are paired."""
    spec = get_benchmark_spec()
    with shared(PUBLISHED_SCORES).open(encoding="utf-8") as f:
        records = list(csv.DictReader(f))
    for rec in records:
        bt = spec.task(rec["task"])
        assert published_metric(bt) == rec["main_metric"], rec
        pair = pair_for(bt)
        if pair is None:
            assert bt.main_score == rec["main_metric"], rec
        elif pair.task_type == "Reranking":
            assert pair.current == bt.main_score, rec  # mteb 2's main score is the same AP
