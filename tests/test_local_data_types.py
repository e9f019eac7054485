"""Every mteb task type from local files, run through mteb.evaluate with all-MiniLM-L6-v2.

The files are small constructions written here (no published score exists for them): the tests
check that mteb reads exactly the rows written, in the shape its own loader gives, and that a
construction with a perfect answer (identical texts, well separated topics) scores 1.0.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import mteb
import pytest
from conftest import SCIFACT, shared
from data_helpers import write_jsonl
from mteb.abstasks import AbsTaskClustering

import linq_eval
from linq_eval.errors import DataError
from linq_eval.run.local_data import find_task_dir, load_local_task
from linq_eval.run.local_data.clustering import reads_sets

TOPICS = {
    "football": [
        "The striker scored a late goal in the football match.",
        "The football team won the league after a penalty shootout.",
        "The goalkeeper saved a penalty in the cup final.",
        "Fans cheered as the midfielder scored from a free kick.",
        "The football coach picked a new captain for the season.",
    ],
    "baking": [
        "Knead the bread dough and let it rise for an hour.",
        "Bake the chocolate cake at 180 degrees for forty minutes.",
        "Whisk the eggs with sugar before folding in the flour.",
        "The sourdough loaf needs a hot oven and a little steam.",
        "Cool the cookies on a rack before adding the icing.",
    ],
    "astronomy": [
        "The telescope observed a distant galaxy full of young stars.",
        "Jupiter's moons orbit the giant planet in a few days.",
        "A supernova explosion outshines its entire galaxy.",
        "Astronomers measured the light of a faraway quasar.",
        "The comet's tail points away from the sun.",
    ],
}
"""Three well separated topics, five texts each."""


@pytest.fixture(scope="module")
def minilm(minilm_path: Path) -> Any:
    """The project's all-MiniLM-L6-v2 encoder (no prompts: identical texts embed identically)."""
    return linq_eval.load_encoder("all-minilm-l6-v2", device="cpu", progress=False)


def load(name: str, data_dir: Path, **filters: Any) -> Any:
    task = mteb.get_task(name, **filters)
    assert load_local_task(task, data_dir)
    return task


def evaluate(encoder: Any, task: Any) -> dict[str, dict[str, Any]]:
    """mteb's scores of the test split, per subset."""
    result = mteb.evaluate(encoder, task, cache=None, show_progress_bar=False)
    assert not result.exceptions
    (task_result,) = result.task_results
    assert task_result.task_name == task.metadata.name
    return {s["hf_subset"]: s for s in task_result.scores["test"]}


def topic_rows() -> list[dict[str, str]]:
    return [{"sentences": t, "labels": topic} for topic, texts in TOPICS.items() for t in texts]


# --------------------------------------------------------------------------- clustering


def test_clustering_v1_from_single_texts_is_one_set(tmp_path: Path, minilm: Any) -> None:
    folder = tmp_path / "TwentyNewsgroupsClustering"
    folder.mkdir()
    with (folder / "test.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["sentences", "labels"])
        writer.writeheader()
        writer.writerows(topic_rows())
    task = load("TwentyNewsgroupsClustering", tmp_path)
    ds = task.dataset["test"]
    assert ds.num_rows == 1  # mteb 1's layout: one clustering set per row
    assert ds["sentences"][0] == [r["sentences"] for r in topic_rows()]
    assert ds["labels"][0] == [r["labels"] for r in topic_rows()]
    (scores,) = evaluate(minilm, task).values()
    assert scores["v_measures"] == [pytest.approx(1.0)]
    assert scores["main_score"] == pytest.approx(1.0)


def test_clustering_sets_feed_v1_and_its_v2_successor(tmp_path: Path, minilm: Any) -> None:
    # StackExchangeClustering.v2 reads the same hub data as its v1 parent and regroups it:
    # one folder, named like the parent, serves both.
    rows = topic_rows()
    sets = [rows[:8], rows[8:]]
    folder = tmp_path / "StackExchangeClustering"
    write_jsonl(
        folder / "test.jsonl",
        [
            {"sentences": [r["sentences"] for r in s], "labels": [r["labels"] for r in s]}
            for s in sets
        ],
    )
    assert find_task_dir("StackExchangeClustering.v2", tmp_path) == folder

    v1 = load("StackExchangeClustering", tmp_path)
    assert v1.dataset["test"].num_rows == 2
    (v1_scores,) = evaluate(minilm, v1).values()
    assert len(v1_scores["v_measures"]) == 2
    assert all(0.0 <= v <= 1.0 for v in v1_scores["v_measures"])

    v2 = load("StackExchangeClustering.v2", tmp_path)
    ds = v2.dataset["test"]  # mteb's own transform flattened the sets: one text per row
    assert ds["sentences"] == [r["sentences"] for r in rows]
    names = ds.features["labels"].names  # and its stratified subsampling cast the labels
    assert [names[i] for i in ds["labels"]] == [r["labels"] for r in rows]
    (v2_scores,) = evaluate(minilm, v2).values()
    # mteb's fast clustering runs 10 k-means fits of one initialisation each on resamples:
    # well separated topics score near 1 (a fit can still start badly), never above
    assert len(v2_scores["v_measures"]["Level 0"]) == v2.n_clusters
    assert all(0.0 <= v <= 1.0 + 1e-9 for v in v2_scores["v_measures"]["Level 0"])
    assert 0.9 < v2_scores["main_score"] <= 1.0 + 1e-9


def test_clustering_errors(tmp_path: Path) -> None:
    rows = [
        {"sentences": "a text", "labels": "x"},
        {"sentences": ["a", "b"], "labels": ["x"]},
        {"sentences": 3, "labels": "x"},
    ]
    write_jsonl(tmp_path / "TwentyNewsgroupsClustering" / "test.jsonl", rows)
    with pytest.raises(DataError) as info:
        load_local_task(mteb.get_task("TwentyNewsgroupsClustering"), tmp_path)
    message = str(info.value)
    assert "test.jsonl:2: 2 sentences but 1 labels" in message
    assert "test.jsonl:3: sentences must be a text" in message


def test_clustering_task_with_flat_hub_data_refuses_sets(tmp_path: Path) -> None:
    # A fast clustering task whose hub data holds one text per row: sets are an error.
    name = next(
        t.metadata.name
        for t in mteb.get_tasks(task_types=["Clustering"], languages=["eng"])
        if list(t.hf_subsets) == ["default"]
        and isinstance(t, AbsTaskClustering)
        and not reads_sets(t)
    )
    write_jsonl(tmp_path / name / "test.jsonl", [{"sentences": ["a", "b"], "labels": [1, 2]}])
    with pytest.raises(DataError, match="holds one text per row"):
        load_local_task(mteb.get_task(name), tmp_path)


# --------------------------------------------------------------------------- pair classification


def pair_rows() -> list[dict[str, Any]]:
    football, baking = TOPICS["football"], TOPICS["baking"]
    same = [{"sentence1": t, "sentence2": t, "labels": 1} for t in football[:3]]
    other = [
        {"sentence1": a, "sentence2": b, "labels": 0}
        for a, b in zip(football, baking, strict=False)
    ]
    return same + other


def test_pair_classification(tmp_path: Path, minilm: Any) -> None:
    write_jsonl(tmp_path / "SprintDuplicateQuestions" / "test.jsonl", pair_rows())
    task = load("SprintDuplicateQuestions", tmp_path)
    ds = task.dataset["test"]
    assert ds.column_names == ["sentence1", "sentence2", "labels"]
    assert ds["labels"] == [r["labels"] for r in pair_rows()]
    (scores,) = evaluate(minilm, task).values()
    # identical pairs are the only duplicates: every similarity ranks them first
    assert scores["main_score"] == pytest.approx(1.0)
    assert scores["cosine_accuracy"] == pytest.approx(1.0)


def test_pair_classification_errors(tmp_path: Path) -> None:
    folder = tmp_path / "SprintDuplicateQuestions"
    folder.mkdir()
    (folder / "test.csv").write_text("sentence1,sentence2,labels\na,b,2\nc,d,1\n", encoding="utf-8")
    with pytest.raises(DataError, match="test.csv:2: label '2' must be 0 or 1"):
        load_local_task(mteb.get_task("SprintDuplicateQuestions"), tmp_path)
    (folder / "test.csv").write_text("sentence1,sentence2,labels\na,b,1\nc,d,1\n", encoding="utf-8")
    with pytest.raises(DataError, match="only label 1"):
        load_local_task(mteb.get_task("SprintDuplicateQuestions"), tmp_path)


# --------------------------------------------------------------------------- reranking


def write_reranking_beir(folder: Path) -> list[str]:
    """Three queries, each with three candidates of which the first is relevant; query ids."""
    topics = list(TOPICS.values())
    corpus, queries, qrels, ranked = [], [], ["query-id\tcorpus-id\tscore"], []
    for q, texts in enumerate(topics):
        qid = f"q{q}"
        queries.append({"_id": qid, "text": texts[0]})
        ids = [f"{qid}-rel", f"{qid}-x", f"{qid}-y"]
        others = [topics[(q + 1) % 3][1], topics[(q + 2) % 3][2]]
        corpus += [{"_id": i, "text": t} for i, t in zip(ids, [texts[1], *others], strict=True)]
        qrels += [f"{qid}\t{ids[0]}\t1", f"{qid}\t{ids[1]}\t0"]
        ranked.append({"query-id": qid, "corpus-ids": ids})
    corpus.append({"_id": "never-ranked", "text": texts[0]})  # a copy of the last query
    write_jsonl(folder / "corpus.jsonl", corpus)
    write_jsonl(folder / "queries.jsonl", queries)
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")
    write_jsonl(folder / "top_ranked" / "test.jsonl", ranked)
    return [q["_id"] for q in queries]


def test_reranking_in_mteb2_layout(tmp_path: Path, minilm: Any) -> None:
    qids = write_reranking_beir(tmp_path / "SciDocsRR")
    task = load("SciDocsRR", tmp_path)
    split = task.dataset["default"]["test"]
    assert split["queries"]["id"] == qids
    assert split["top_ranked"] == {q: [f"{q}-rel", f"{q}-x", f"{q}-y"] for q in qids}
    (scores,) = evaluate(minilm, task).values()
    # only the three candidates are ranked (the exact copy outside them never competes)
    assert scores["main_score"] == pytest.approx(1.0)


def test_reranking_needs_its_candidates(tmp_path: Path) -> None:
    write_reranking_beir(tmp_path / "SciDocsRR")
    (tmp_path / "SciDocsRR" / "top_ranked" / "test.jsonl").unlink()
    with pytest.raises(DataError, match="missing file"):
        load_local_task(mteb.get_task("SciDocsRR"), tmp_path)


def test_reranking_in_mteb1_layout(tmp_path: Path, minilm: Any) -> None:
    football, baking, space = TOPICS.values()
    rows = [
        {"query": football[0], "positive": [football[1]], "negative": [baking[0], space[0]]},
        {"query": baking[1], "positive": [baking[2], baking[3]], "negative": [space[1]]},
        {"query": space[2], "positive": [space[3]], "negative": []},  # dropped, as mteb does
    ]
    write_jsonl(tmp_path / "StackOverflowDupQuestions" / "test.jsonl", rows)
    task = load("StackOverflowDupQuestions", tmp_path)
    split = task.dataset["default"]["test"]
    assert split["queries"]["text"] == [football[0], baking[1]]
    assert split["top_ranked"]["test_query1"] == [
        "apositive_test_query1_00000",
        "apositive_test_query1_00001",
        "negative_test_query1_00000",
    ]
    assert split["corpus"].num_rows == 6
    (scores,) = evaluate(minilm, task).values()
    assert scores["main_score"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- summarization


def summary_rows() -> list[dict[str, Any]]:
    rows = []
    for topic, texts in TOPICS.items():
        other = TOPICS["astronomy" if topic != "astronomy" else "baking"][4]
        rows.append(
            {
                "text": " ".join(texts),
                "human_summaries": [texts[0]],
                "machine_summaries": [texts[0], texts[1], other],
                "relevance": [5, 3.5, 1],
            }
        )
    return rows


def test_summarization_v1_folder_feeds_v2(tmp_path: Path, minilm: Any) -> None:
    folder = tmp_path / "SummEval"
    folder.mkdir()
    with (folder / "test.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(summary_rows()[0]))
        writer.writeheader()  # list columns as JSON in the cells
        writer.writerows(
            {k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()}
            for row in summary_rows()
        )
    task = load("SummEvalSummarization.v2", tmp_path)
    ds = task.dataset["test"]
    assert ds["machine_summaries"] == [r["machine_summaries"] for r in summary_rows()]
    assert ds["relevance"] == [[5.0, 3.5, 1.0]] * 3
    (scores,) = evaluate(minilm, task).values()
    # the summary identical to the human one, then one on the topic, then an unrelated one
    assert scores["main_score"] == pytest.approx(1.0)


def test_summarization_errors(tmp_path: Path) -> None:
    rows = summary_rows()
    rows[0]["relevance"] = [5, 3]
    rows[1]["relevance"] = [5, 3, 9]
    rows[2]["human_summaries"] = []
    write_jsonl(tmp_path / "SummEval" / "test.jsonl", rows)
    with pytest.raises(DataError) as info:
        load_local_task(mteb.get_task("SummEval"), tmp_path)
    message = str(info.value)
    assert "test.jsonl:1: relevance must be a list with one score per machine summary" in message
    assert "test.jsonl:2: relevance: score 9 outside the task's range [0, 5]" in message
    assert "test.jsonl:3: human_summaries must be a non-empty list of texts" in message


# --------------------------------------------------------------------------- subsets


def test_task_with_subsets_reads_subfolders(tmp_path: Path, minilm: Any) -> None:
    texts = [t for ts in TOPICS.values() for t in ts]
    rows = [{"sentence1": a, "sentence2": a, "score": 4} for a in texts[:4]]
    rows += [
        {"sentence1": a, "sentence2": b, "score": 1}
        for a, b in zip(texts[:4], texts[-4:], strict=True)
    ]
    write_jsonl(tmp_path / "STS22.v2" / "en" / "test.jsonl", rows)
    task = load("STS22.v2", tmp_path, hf_subsets=["en"])
    assert list(task.dataset) == ["en"]
    assert task.dataset["en"]["test"]["score"] == [r["score"] for r in rows]
    scores = evaluate(minilm, task)
    assert list(scores) == ["en"]
    assert -1.0 <= scores["en"]["main_score"] <= 1.0 and math.isfinite(scores["en"]["main_score"])
    assert scores["en"]["pearson"] > 0.9  # identical pairs score 4, unrelated ones 1

    with pytest.raises(DataError, match="reads subset 'de' from a subfolder"):
        load_local_task(mteb.get_task("STS22.v2", hf_subsets=["en", "de"]), tmp_path)


# --------------------------------------------------------------------------- v2 retrieval


def test_hard_negatives_task_from_a_scifact_subset(tmp_path: Path, minilm: Any) -> None:
    # FEVERHardNegatives's hub data is a small corpus per claim; here a folder in its BEIR
    # layout is built from part of SciFact, to exercise the path (not FEVER's published score).
    scifact = shared(SCIFACT)
    qrels = (scifact / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    judged = [line.split("\t") for line in qrels[1:13]]
    qids = list(dict.fromkeys(q for q, _, _ in judged))
    relevant = {d for _, d, _ in judged}
    corpus = [json.loads(line) for line in (scifact / "corpus.jsonl").open(encoding="utf-8")]
    docs = [d for d in corpus if d["_id"] in relevant] + [
        d for d in corpus[:20] if d["_id"] not in relevant
    ]
    queries = [json.loads(line) for line in (scifact / "queries.jsonl").open(encoding="utf-8")]
    folder = tmp_path / "FEVERHardNegatives"
    write_jsonl(folder / "corpus.jsonl", docs)
    write_jsonl(folder / "queries.jsonl", [q for q in queries if q["_id"] in qids])
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("\n".join(qrels[:13]) + "\n", encoding="utf-8")
    (tmp_path / "fever").mkdir()  # FEVER's full corpus is other data: never matched
    assert find_task_dir("FEVERHardNegatives", tmp_path) == folder

    task = load("FEVERHardNegatives", tmp_path)
    split = task.dataset["default"]["test"]
    assert split["queries"]["id"] == qids
    assert split["corpus"].num_rows == len(docs)
    (scores,) = evaluate(minilm, task).values()
    assert 0.0 < scores["main_score"] <= 1.0
