"""Regenerate the published baselines in this folder from the reference table.

Run from the repository root (needs mteb, no network):

    python results/baselines/published/build_published.py ../shared/reference/published_scores.csv

Writes ``<org__model>/<external|no_revision_available>/<Task>.json`` (mteb TaskResult JSON, scores
as fractions like every mteb result) and ``linq_eval_baseline.json`` (model order of the card,
display labels, provenance). See README.md for the sources.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARK = "MTEB(eng, v1)"

RESULTS_REPO = "https://github.com/embeddings-benchmark/results"
HUB_COMMIT = "6dc609bacf737ea0ddb3799008116f775df12eda"
HUB_CQA_COMMIT = "dbd0d75cba9a4ac79d9a044d1aec68bd319703a7"
API_COMMIT = "11a99065bafa78317967f4490e919727f65a86f1"
API_CQA_COMMIT = "5d1224d330c51f52f0cf3955568e4c49477564b9"

# The card's table, in its order; label = the card's name for the model.
CARD = [
    ("Linq-AI-Research/Linq-Embed-Mistral", "Linq-Embed-Mistral", "hub"),
    ("nvidia/NV-Embed-v1", "NV-Embed-v1", "hub"),
    ("Salesforce/SFR-Embedding-Mistral", "SFR-Embedding-Mistral", "hub"),
    ("voyageai/voyage-large-2-instruct", "voyage-large-2-instruct", "api"),
    ("GritLM/GritLM-7B", "GritLM-7B", "hub"),
    ("voyageai/voyage-lite-02-instruct", "voyage-lite-02-instruct", "api"),
    ("Alibaba-NLP/gte-Qwen1.5-7B-instruct", "gte-Qwen1.5-7B-instruct", "hub"),
    ("intfloat/e5-mistral-7b-instruct", "e5-mistral-7b-instruct", "hub"),
    (
        "google-gecko/text-embedding-preview-0409",
        "google-gecko.text-embedding-preview-0409",
        "api",
    ),
    ("openai/text-embedding-3-large", "text-embedding-3-large", "api"),
    ("Cohere/Cohere-embed-english-v3.0", "Cohere-embed-english-v3.0", "api"),
]


def main(csv_path: str) -> None:
    import mteb
    from mteb import TaskResult

    tasks = {t.metadata.name: t for t in mteb.get_benchmark(BENCHMARK).tasks}
    rows: dict[str, list[dict[str, str]]] = {}
    with open(csv_path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rows.setdefault(row["model"], []).append(row)
    assert sorted(rows) == sorted(m for m, _, _ in CARD), sorted(rows)

    index = []
    for model, label, kind in CARD:
        revision = "external" if kind == "hub" else "no_revision_available"
        folder = HERE / model.replace("/", "__") / revision
        folder.mkdir(parents=True, exist_ok=True)
        assert len(rows[model]) == len(tasks), (model, len(rows[model]))
        for row in rows[model]:
            task = tasks[row["task"]]
            assert row["type"] == task.metadata.type, row
            subset, split = row["subset"], row["split"]
            assert task.eval_splits == [split] and task.hf_subsets == [subset], row
            value = round(float(row["score"]) / 100, 6)
            langs = task.metadata.hf_subsets_to_langscripts.get(subset) or list(
                task.metadata.eval_languages
            )
            # The era's metric under its own name (cos_sim_ap, map, cos_sim_spearman ...),
            # not today's (max_ap, map_at_1000, cosine_spearman): they are not the same metric.
            scores = {row["main_metric"]: value, "main_score": value}
            result = TaskResult(
                dataset_revision="dataset revision not available",
                task_name=task.metadata.name,
                mteb_version=None,
                scores={split: [{**scores, "hf_subset": subset, "languages": langs}]},
                evaluation_time=None,
            )
            result.to_disk(folder / f"{task.metadata.name}.json")
        commit, cqa_commit = (
            (HUB_COMMIT, HUB_CQA_COMMIT) if kind == "hub" else (API_COMMIT, API_CQA_COMMIT)
        )
        index.append(
            {
                "model": model,
                "label": label,
                "folder": f"{model.replace('/', '__')}/{revision}",
                "source": f"{RESULTS_REPO}/tree/{commit}/results/"
                f"{model.replace('/', '__')}/{revision}",
                "source_commit": commit,
                "cqadupstack_source_commit": cqa_commit,
            }
        )
    (HERE / "linq_eval_baseline.json").write_text(
        json.dumps(
            {
                "name": "published",
                "description": "Published MTEB(eng, v1) main scores of the 11 models in the "
                "Linq-Embed-Mistral card's table (2024 leaderboard era). See README.md.",
                "benchmark": BENCHMARK,
                "metrics": {
                    "Classification": "accuracy",
                    "Clustering": "v_measure",
                    "PairClassification": "cos_sim_ap (mteb now reports max_ap)",
                    "Reranking": "map (mteb now reports map_at_1000)",
                    "Retrieval": "ndcg_at_10",
                    "STS": "cos_sim_spearman (mteb now: cosine_spearman)",
                    "Summarization": "cos_sim_spearman (mteb now: cosine_spearman)",
                },
                "models": index,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/reference/published_scores.csv")
