"""Build the `published-v2` baseline set: today's MTEB(eng, v2) leaderboard scores, as mteb files.

Run from the repository root (needs mteb, no network):

    python scripts/build_published_v2.py ../shared/reference/published_scores_v2.csv

Reads the reference table (columns model, revision, task, task_type, main_score; scores x100)
and writes, under results/baselines/published-v2/:

- ``<org__model>/<revision>/<Task>.json``: one mteb TaskResult per score, in the folder of the
  source revision it came from (``external`` for a model's own reported results, a commit hash
  for runs by mteb's maintainers), mirroring embeddings-benchmark/results;
- ``linq_eval_baseline.json``: the models (ordered by Mean (Task), best first), the folders
  that together make each model's row (what the leaderboard's ``join_revisions`` joined), and
  the provenance.

The reference table itself is not copied. README.md in that folder is written by hand.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import sys
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT = REPO_ROOT / "results" / "baselines" / "published-v2"
BENCHMARK = "MTEB(eng, v2)"
SET_NAME = "published-v2"
RESULTS_REPO = "https://github.com/embeddings-benchmark/results"
RESULTS_COMMIT = "f4cc6c8b365a3c779dbc708d6affe0b0355b2ddf"
REFERENCE_README = REPO_ROOT.parent / "shared" / "reference" / "README.md"
"""The reference's provenance: which mteb release loaded the scores from the results
repository ("loaded with mteb X"), written into the index as it says."""
EXTERNAL = "external"

# The metric a score is on, where it is not the one mteb 2 computes as the task's main score:
# a model's own (`external`) Reranking results are mteb 1.x's RerankingEvaluator `map`
# (identical to the card-era values of the `published` set where both have the model).
ERA_METRICS = {(EXTERNAL, "Reranking"): "map"}


def reference_mteb() -> str:
    """The mteb release the reference's README says loaded its scores."""
    found = re.search(r"loaded with mteb (\d+\.\d+\.\d+)", REFERENCE_README.read_text())
    if found is None:
        raise SystemExit(f"{REFERENCE_README}: no 'loaded with mteb X.Y.Z'")
    return found.group(1)


def read_rows(csv_path: str) -> dict[str, list[dict[str, str]]]:
    """The reference rows, grouped by model."""
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    with open(csv_path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rows[row["model"]].append(row)
    return dict(rows)


def write_result(task, row: dict[str, str], folder: Path) -> None:
    """One mteb TaskResult file for one published score, on the benchmark's split and subset."""
    from mteb import TaskResult

    assert row["task_type"] == task.metadata.type, row
    (split,) = task.eval_splits
    (subset,) = task.hf_subsets
    value = round(float(row["main_score"]) / 100, 6)
    metric = ERA_METRICS.get((row["revision"], task.metadata.type), task.metadata.main_score)
    langs = task.metadata.hf_subsets_to_langscripts.get(subset) or list(
        task.metadata.eval_languages
    )
    result = TaskResult(
        dataset_revision="dataset revision not available",  # the reference table has none
        task_name=task.metadata.name,
        mteb_version=None,
        scores={
            split: [{metric: value, "main_score": value, "hf_subset": subset, "languages": langs}]
        },
        evaluation_time=None,
    )
    result.to_disk(folder / f"{task.metadata.name}.json")


def model_entry(model: str, rows: list[dict[str, str]]) -> dict[str, object]:
    """The index entry of one model: its folders (one per source revision) and provenance."""
    slug = model.replace("/", "__")
    revisions = sorted({r["revision"] for r in rows}, key=lambda r: (r == EXTERNAL, r))
    main = next((r for r in revisions if r != EXTERNAL), EXTERNAL)
    return {
        "model": model,
        "label": model.rsplit("/", 1)[-1],
        "revision": main,
        "folders": [f"{slug}/{r}" for r in revisions],
        "sources": [f"{RESULTS_REPO}/tree/{RESULTS_COMMIT}/results/{slug}/{r}" for r in revisions],
        "source_commit": RESULTS_COMMIT,
    }


def main(csv_path: str, out: Path = OUT) -> None:
    import mteb

    tasks = {t.metadata.name: t for t in mteb.get_benchmark(BENCHMARK).tasks}
    rows = read_rows(csv_path)
    for model, model_rows in rows.items():
        names = [r["task"] for r in model_rows]
        assert sorted(names) == sorted(tasks), (model, sorted(set(tasks) ^ set(names)))
    for child in out.glob("*"):
        if child.is_dir():
            shutil.rmtree(child)
    index = []
    by_mean = sorted(
        rows, key=lambda m: -sum(float(r["main_score"]) for r in rows[m]) / len(rows[m])
    )
    for model in by_mean:
        model_rows = rows[model]
        for row in model_rows:
            folder = out / model.replace("/", "__") / row["revision"]
            folder.mkdir(parents=True, exist_ok=True)
            write_result(tasks[row["task"]], row, folder)
        index.append(model_entry(model, model_rows))
    doc = {
        "name": SET_NAME,
        "description": f"Today's {BENCHMARK} leaderboard scores of {len(index)} decoder "
        "embedders (embeddings-benchmark/results as mteb's leaderboard joins them). "
        "See README.md.",
        "benchmark": BENCHMARK,
        "source": f"{RESULTS_REPO}/tree/{RESULTS_COMMIT}",
        "loaded_with": f"mteb {reference_mteb()}: "
        "ResultCache.load_results(validate_and_filter=True), join_revisions(), "
        "TaskResult.get_score()",
        "metrics": {
            "Reranking": "map_at_1000 (MindSmallReranking: max_over_subqueries_map_at_1000); "
            "map (mteb 1.x RerankingEvaluator) in the `external` folders",
            "PairClassification": "max_ap",
            "STS": "cosine_spearman",
            "Summarization": "cosine_spearman",
        },
        "models": index,
    }
    (out / "linq_eval_baseline.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(
        f"wrote {sum(len(r) for r in rows.values())} result files for {len(index)} models to {out}"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/reference/published_scores_v2.csv")
