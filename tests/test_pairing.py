"""A re-run of a published model beside its published row: order, per-task and mean deltas.

The run folders are written with mteb's own classes (tests/result_files.py) and claim no
score; the published numbers are read here straight from the shipped JSON files, without
linq-eval's reader, so every delta is checked against an independent subtraction.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
from cli_helpers import run_cli
from result_files import write_results

from linq_eval.results.reading import load_baselines, load_results
from linq_eval.results.render import render
from linq_eval.results.tables import build_table

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

BASELINES = Path(__file__).resolve().parents[1] / "results" / "baselines"
V1, V2 = "MTEB(eng, v1)", "MTEB(eng, v2)"
QWEN = "Qwen/Qwen3-Embedding-8B"
LINQ = "Linq-AI-Research/Linq-Embed-Mistral"
RUN_SCORES = {  # fractions, as mteb writes them
    "SCIDOCS": 0.25,
    "FEVERHardNegatives": 0.90,
    "STS12": 0.80,
    "Banking77Classification": 0.91,
}
TYPES = {
    "SCIDOCS": "Retrieval",
    "FEVERHardNegatives": "Retrieval",
    "STS12": "STS",
    "Banking77Classification": "Classification",
}


def published_score(baseline_set: str, model: str, task: str, metric: str | None = None) -> float:
    """A published score x100, read from the shipped file itself (one split, one subset)."""
    (path,) = (BASELINES / baseline_set / model.replace("/", "__")).glob(f"*/{task}.json")
    (entries,) = json.loads(path.read_text(encoding="utf-8"))["scores"].values()
    (entry,) = entries
    return 100 * entry[metric or "main_score"]


def _mean(values):
    values = list(values)
    return sum(values) / len(values)


@pytest.fixture(scope="module")
def qwen_rerun(tmp_path_factory) -> Path:
    """A re-run of Qwen3-Embedding-8B on four MTEB(eng, v2) tasks, and a model no baseline has."""
    root = tmp_path_factory.mktemp("rerun")
    write_results(root, QWEN, "rerun", RUN_SCORES)
    write_results(root, "my-org/my-model", "rev", {"SCIDOCS": 0.2})
    return root


@pytest.fixture(scope="module")
def expected() -> dict[str, float]:
    """Run minus published per task, from the files."""
    return {t: 100 * v - published_score("published-v2", QWEN, t) for t, v in RUN_SCORES.items()}


def test_rerun_follows_its_published_row_with_its_deltas_in_json(
    qwen_rerun, expected, monkeypatch, capsys
):
    args = ["table", str(qwen_rerun), "--baselines", "published-v2", "--benchmark", V2]
    code, out, err = run_cli(monkeypatch, capsys, *args, "--format", "json", "--round", "6")
    assert code == 0, err
    doc = json.loads(out)
    models = [(r["model"], r["source"]) for r in doc["rows"]]
    first = models.index((QWEN, "published-v2"))
    assert models[first + 1] == (QWEN, "mteb")  # right after its published row
    # given before the baselines, the run no baseline has keeps its place: first
    assert models[0] == ("my-org/my-model", "mteb") and len(models) == 10
    (pair,) = doc["pairs"]
    assert (pair["model"], pair["published"]) == (QWEN, "Qwen3-Embedding-8B (published-v2)")
    assert pair["run"] == doc["rows"][first + 1]["label"]
    for task, delta in expected.items():
        cell = pair["tasks"][task]
        assert cell["delta"] == pytest.approx(delta, abs=1e-6), task
        assert cell["run"] - cell["published"] == pytest.approx(delta, abs=1e-6)
    others = [t for t in pair["tasks"] if t not in expected]
    assert len(others) == 37 and all(pair["tasks"][t]["delta"] is None for t in others)
    means = pair["means"]
    assert means["Mean (Task)"] == {
        "delta": pytest.approx(_mean(expected.values()), abs=1e-6),
        "n": 4,
        "of": 41,
    }
    retrieval = _mean(expected[t] for t in ("SCIDOCS", "FEVERHardNegatives"))
    assert means["Retrieval (10)"] == {
        "delta": pytest.approx(retrieval, abs=1e-6),
        "n": 2,
        "of": 10,
    }
    by_type = [retrieval, expected["STS12"], expected["Banking77Classification"]]
    assert means["Mean (TaskType)"]["delta"] == pytest.approx(_mean(by_type), abs=1e-6)
    assert means["Clustering (8)"] == {"delta": None, "n": 0, "of": 8}
    # the run's own columns say the same: its mean minus the published row's, like for like
    subset = next(c for c in doc["columns"] if c.startswith("Mean (4 tasks"))
    published_row, run_row = doc["rows"][first], doc["rows"][first + 1]
    assert means[subset]["delta"] == pytest.approx(
        run_row[subset] - published_row[subset], abs=1e-6
    )
    assert any("re-runs Qwen/Qwen3-Embedding-8B" in n for n in doc["notes"])


def test_markdown_shows_the_delta_row_and_the_per_task_table(
    qwen_rerun, expected, monkeypatch, capsys
):
    args = ["table", str(qwen_rerun), "--baselines", "published-v2", "--benchmark", V2]
    code, out, err = run_cli(monkeypatch, capsys, *args, "--sort", "average")
    assert code == 0, err
    lines = out.splitlines()
    at = lines.index(next(line for line in lines if line.startswith("| Qwen3-Embedding-8B (")))
    assert lines[at + 1].startswith("| Qwen3-Embedding-8B @rerun | ")
    mean = f"{round(_mean(expected.values()) + 0.0, 2):+.2f}"
    assert lines[at + 2].startswith(f"| Δ vs Qwen3-Embedding-8B (published-v2) | {mean} (4/41) |")
    assert "Qwen3-Embedding-8B @rerun vs Qwen3-Embedding-8B (published-v2), per task:" in out
    for task, delta in expected.items():
        pub = published_score("published-v2", QWEN, task)
        row = (
            f"| {task} | {TYPES[task]} | {pub:.2f} | {100 * RUN_SCORES[task]:.2f} | {delta:+.2f} |"
        )
        assert row in lines, row
    start = lines.index(
        "| Task | Type | Qwen3-Embedding-8B (published-v2) | Qwen3-Embedding-8B @rerun | Δ |"
    )
    grid = lines[start + 2 : lines.index("", start)]
    assert len(grid) == 4  # only the tasks the run has
    assert "my-model" in out and "Δ vs my-model" not in out


def test_csv_and_html_carry_the_deltas(qwen_rerun, expected):
    sets = load_results(qwen_rerun) + load_baselines("published-v2")
    table = build_table(sets, V2)
    rows = list(csv.DictReader(io.StringIO(render(table, "csv", per_task=True, decimals=4))))
    delta = next(r for r in rows if r["source"] == "delta")
    assert rows[rows.index(delta) - 1]["label"] == "Qwen3-Embedding-8B @rerun"
    assert delta["coverage"] == "4/41"
    assert delta["Mean (Task)"] == f"{_mean(expected.values()):+.4f} (4/41)"
    for task, value in expected.items():
        assert delta[task] == f"{value:+.4f}"  # signed, rounded half up like every score
    html = render(table, "html")
    assert "Re-runs of published models" in html and "Δ</th>" in html
    assert f"{expected['SCIDOCS']:+.2f}" in html


def test_a_score_in_another_computation_gets_no_delta(tmp_path):
    """MTEB(eng, v1): a PairClassification file holding only max_ap is not set against the
    published cos_sim_ap; one holding cosine_ap is."""
    write_results(
        tmp_path,
        LINQ,
        "rerun",
        {"SprintDuplicateQuestions": 0.97, "TwitterSemEval2015": 0.70, "SciFact": 0.80},
        extra={"TwitterSemEval2015": {"cosine_ap": 0.70}},
    )
    table = build_table(load_results(tmp_path) + load_baselines("published"), V1)
    (pairing,) = table.pairs
    assert pairing.different == ("SprintDuplicateQuestions",)
    assert pairing.tasks["SprintDuplicateQuestions"] is None
    twitter = 70 - published_score("published", LINQ, "TwitterSemEval2015", "cos_sim_ap")
    assert pairing.tasks["TwitterSemEval2015"] == pytest.approx(twitter, abs=1e-9)
    scifact = 80 - published_score("published", LINQ, "SciFact")
    assert pairing.tasks["SciFact"] == pytest.approx(scifact, abs=1e-9)
    assert pairing.means["Average (56)"].n == 2
    assert pairing.means["Average (56)"].value == pytest.approx((twitter + scifact) / 2)
    assert any("No difference for SprintDuplicateQuestions" in n for n in table.notes())
    assert table.rows.index(pairing.run) == table.rows.index(pairing.published) + 1
