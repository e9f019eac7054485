"""The suite-level verdict of ``compare --per-query``: the change of the mean of the task
scores over a NanoBEIR-shaped suite (13 tasks, 50 queries each), with a task-stratified paired
permutation test, checked where the answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import run_cli
from result_files import nano_run

from linq_eval.registry import registry
from linq_eval.results.per_query import (
    EvidencePart,
    QueryEvidence,
    TaskEvidence,
    diff_suite,
    paired_permutation_p,
)

NANO = "NanoBEIR"
QUERIES = 50


@pytest.fixture(scope="module")
def suite_runs(tmp_path_factory):
    """The reference and three runs: identical, every task shifted, one task shifted."""
    rng = np.random.default_rng(5)
    names = [t.name for t in registry().benchmark(NANO).tasks]
    assert len(names) == 13
    ref = {t: rng.uniform(0.2, 0.9, QUERIES) for t in names}

    def noisy(shift: float, tasks) -> dict[str, np.ndarray]:
        out = {}
        for t in names:
            noise = rng.normal(0, 0.15, QUERIES)
            noise -= noise.mean()  # a known mean change: exactly the shift
            out[t] = ref[t] + noise + (shift if t in tasks else 0.0)
        return out

    root = tmp_path_factory.mktemp("suite")
    return {
        "ref": nano_run(root / "ref", ref),
        "same": nano_run(root / "same", ref),
        "all": nano_run(root / "all", noisy(-0.02, names)),
        "one": nano_run(root / "one", noisy(-0.15, names[:1])),
        "first": names[0],
    }


def compare(monkeypatch, capsys, run, ref, *extra):
    return run_cli(
        monkeypatch, capsys, "compare", str(run), "--reference", str(ref), "--benchmark", NANO,
        "--per-query", *extra,
    )  # fmt: skip


def test_identical_runs_give_p_one(suite_runs, monkeypatch, capsys):
    code, out, err = compare(
        monkeypatch, capsys, suite_runs["same"], suite_runs["ref"], "--format", "json"
    )
    assert code == 0, out + err
    suite = json.loads(out)["suite"]
    assert len(suite["tasks"]) == 13 and suite["queries"] == 13 * QUERIES
    assert suite["p_value"] == 1.0 and suite["delta"] == 0.0 and suite["status"] == "ok"


def test_every_task_shifted_gives_p_near_zero_and_fails_the_suite_gate(
    suite_runs, monkeypatch, capsys
):
    """A 2-point drop in every task, among queries whose noise hides it task by task."""
    args = ("--require-significant", "--tolerance", "1", "--format", "json")
    code, out, _ = compare(
        monkeypatch, capsys, suite_runs["all"], suite_runs["ref"], *args, "--gate", "suite"
    )
    doc = json.loads(out)
    suite = doc["suite"]
    assert suite["delta"] == pytest.approx(-2.0, abs=0.01) and suite["p_value"] < 0.001
    assert suite["status"] == "REGRESSION" and code == 1 and not doc["passed"]
    per_task = [d["p_value"] for d in doc["per_query"].values()]
    assert sum(p < 0.05 for p in per_task) < 13  # some tasks alone cannot tell
    assert {t["status"] for t in doc["tasks"]} <= {"gated by suite", "ok"}
    # per task, the same drop is mostly not significant: the task gate misses what the
    # suite finds
    code_task, out_task, _ = compare(
        monkeypatch, capsys, suite_runs["all"], suite_runs["ref"], *args
    )
    assert sum(t["status"] == "REGRESSION" for t in json.loads(out_task)["tasks"]) < 13
    for fmt, said in (
        ("text", "suite (13 tasks, 650 queries)"),
        ("markdown", "**Suite**: suite (13 tasks"),
    ):
        _, text, _ = compare(
            monkeypatch, capsys, suite_runs["all"], suite_runs["ref"], "--require-significant",
            "--tolerance", "1", "--gate", "both", "--format", fmt,
        )  # fmt: skip
        assert said in text and "REGRESSION" in text and "FAIL" in text, text


def test_a_shift_in_one_task_is_found_by_its_own_test_and_named_by_the_suite(
    suite_runs, monkeypatch, capsys
):
    args = ("--require-significant", "--tolerance", "0.5", "--format", "json")
    code, out, _ = compare(
        monkeypatch, capsys, suite_runs["one"], suite_runs["ref"], *args, "--gate", "both"
    )
    doc = json.loads(out)
    first = suite_runs["first"]
    assert doc["per_query"][first]["p_value"] < 0.001
    task = next(t for t in doc["tasks"] if t["task"] == first)
    assert task["status"] == "REGRESSION" and code == 1
    suite = doc["suite"]
    assert suite["delta"] == pytest.approx(-15.0 / 13, abs=0.01)
    assert suite["moved"] == [first]  # the suite says which task moved it


def test_the_suite_statistic_is_the_mean_of_task_means():
    """Two tasks of different sizes count the same; flips stay within the weights."""
    a = TaskEvidence("A", [EvidencePart("default", "test", "ndcg_at_10", {
        f"q{i}": QueryEvidence("", 0.5, ()) for i in range(10)})])  # fmt: skip
    b = TaskEvidence("B", [EvidencePart("default", "test", "ndcg_at_10", {
        f"q{i}": QueryEvidence("", 0.5, ()) for i in range(90)})])  # fmt: skip
    a2 = TaskEvidence("A", [EvidencePart("default", "test", "ndcg_at_10", {
        q: QueryEvidence("", 0.3, ()) for q in a.parts[0].queries})])  # fmt: skip
    suite = diff_suite({"A": (a2, a), "B": (b, b)})
    assert suite.mean_delta == pytest.approx((-0.2 + 0.0) / 2)
    assert suite.queries == 100 and suite.tasks == ("A", "B")
    weights = [1 / 20] * 10 + [1 / 180] * 90
    assert paired_permutation_p([-0.2] * 10 + [0.0] * 90, weights=weights) < 0.01
