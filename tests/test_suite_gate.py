"""The suite-level verdict of ``compare --per-query``: the change of the mean of the task
scores over a NanoBEIR-shaped suite (13 tasks, 50 queries each), with a task-stratified paired
permutation test, checked where the answer is known."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from cli_helpers import run_cli, run_compare, run_here
from conftest import REPO_ROOT, SCIFACT, SHORT_MAX_LENGTH
from data_helpers import sample_beir
from result_files import nano_run

from linq_eval.paths import CACHE_SUBDIR
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
    return run_compare(monkeypatch, capsys, run, ref, "--benchmark", NANO, "--per-query", *extra)


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
            monkeypatch,
            capsys,
            suite_runs["all"],
            suite_runs["ref"],
            "--require-significant",
            "--tolerance",
            "1",
            "--gate",
            "both",
            "--format",
            fmt,
        )
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


def one_part(task: str, scores: dict[str, float]) -> TaskEvidence:
    """Evidence of one part (default subset, test split, nDCG@10) with these query scores."""
    part = EvidencePart(
        "default", "test", "ndcg_at_10", {q: QueryEvidence("", v, ()) for q, v in scores.items()}
    )
    return TaskEvidence(task, [part])


def test_the_suite_statistic_is_the_mean_of_task_means():
    """Two tasks of different sizes count the same; flips stay within the weights."""
    a = one_part("A", dict.fromkeys((f"q{i}" for i in range(10)), 0.5))
    b = one_part("B", dict.fromkeys((f"q{i}" for i in range(90)), 0.5))
    a2 = one_part("A", dict.fromkeys(a.parts[0].queries, 0.3))
    suite = diff_suite({"A": (a2, a), "B": (b, b)})
    assert suite.mean_delta == pytest.approx((-0.2 + 0.0) / 2)
    assert suite.queries == 100 and suite.tasks == ("A", "B")
    weights = [1 / 20] * 10 + [1 / 180] * 90
    assert paired_permutation_p([-0.2] * 10 + [0.0] * 90, weights=weights) < 0.01


def test_the_gate_script_gates_a_nanobeir_run_on_its_suite(suite_runs, tmp_path):
    """scripts/ci_retrieval_gate.sh's gate step against a reference run: the suite gate with
    the significance test by default; a 2-point drop in every task fails, the same run
    passes."""
    script = REPO_ROOT / "scripts" / "ci_retrieval_gate.sh"
    outcomes = {}
    for name in ("same", "all"):
        out = shutil.copytree(suite_runs[name], tmp_path / name)
        env = {
            **os.environ,
            "MODE": "gate",
            "REFERENCE": str(suite_runs["ref"]),
            "TOLERANCE": "1",
            "LINQ_EVAL": f"{sys.executable} -m linq_eval.cli",
        }
        proc = subprocess.run(
            ["bash", str(script), str(out)], env=env, capture_output=True, text=True, timeout=600
        )
        outcomes[name] = (proc.returncode, (out / "compare.md").read_text(encoding="utf-8"))
    assert outcomes["same"][0] == 0 and "**PASS**" in outcomes["same"][1]
    code, text = outcomes["all"]
    assert code == 1 and "**Suite**: suite (13 tasks, 650 queries)" in text and "REGRESSION" in text


def test_the_workflow_runs_on_a_gpu_and_gates_without_torch():
    """scripts/github-actions-retrieval-gate.yml: a run job on a GPU runner uploading the run,
    then a gate job on a plain runner with the light install."""
    workflow = yaml.safe_load(
        (REPO_ROOT / "scripts" / "github-actions-retrieval-gate.yml").read_text(encoding="utf-8")
    )
    run, gate = workflow["jobs"]["run"], workflow["jobs"]["gate"]
    assert "gpu" in run["runs-on"] and gate["needs"] == "run" and gate["runs-on"] == "ubuntu-latest"
    steps = {s.get("name", s.get("uses")): s for s in [*run["steps"], *gate["steps"]]}
    assert "MODE=run" in steps["Run NanoBEIR"]["run"]
    assert steps["Keep the embedding cache between runs"]["with"]["path"].endswith("embeddings")
    install = steps["Install linq-eval without torch (reading and comparing results only)"]["run"]
    assert "[models]" not in install and "torch" not in install
    assert "MODE=gate" in steps["Gate on the suite and on each task"]["run"]
    assert workflow["env"]["BENCHMARK"] == "NanoBEIR"


# ------------------------------------------------------------------ NanoBEIR on real text


def test_nanobeir_plans_with_each_profiles_inherited_instructions(monkeypatch, capsys):
    for profile in ("linq-embed-mistral", "qwen3-embedding-8b", "sfr-embedding-2r"):
        code, out, err = run_cli(
            monkeypatch, capsys, "plan", "--model", profile, "--benchmark", NANO
        )
        assert code == 0 and "# 13 tasks (0 done)" in out, err
    code, out, _ = run_cli(monkeypatch, capsys, "instructions", "--benchmark", NANO)
    rows = {line.split()[0]: line for line in out.splitlines()[3:]}
    assert len(rows) == 13 and " SciFact " in rows["NanoSciFactRetrieval"]
    assert " MSMARCO " in rows["NanoMSMARCORetrieval"]


@pytest.fixture(scope="module")
def nano_sample(tmp_path_factory):
    """A Nano-shaped sample of the real SciFact (50 queries, their judged documents and 1,500
    others) as NanoSciFactRetrieval's folder: its code path, no published score claimed."""
    root = tmp_path_factory.mktemp("nano-data")
    sample_beir(SCIFACT, root / "NanoSciFactRetrieval", queries=50, other_docs=1500, split="train")
    return root


def test_a_nano_shaped_run_and_a_damaged_one_get_a_suite_verdict(
    nano_sample, minilm_run, minilm_short_run, tmp_path, monkeypatch, capsys
):
    """all-MiniLM-L6-v2 on the sample at its own 256 tokens and at 32: the suite (one task
    here) gets its p-value and verdict in every format, and the HTML report shows it. The
    sample's texts are SciFact's: the session's SciFact runs at both lengths hold their
    embeddings, so the runs here only score."""
    cache = tmp_path / "cache"
    for made in (minilm_run[0], minilm_short_run):
        shutil.copytree(made / CACHE_SUBDIR, cache, dirs_exist_ok=True)
    runs = {}
    for length in ("256", str(SHORT_MAX_LENGTH)):
        runs[length] = tmp_path / length
        run_here(
            monkeypatch,
            capsys,
            "run",
            "--model",
            "all-minilm-l6-v2",
            "--benchmark",
            NANO,
            "--tasks",
            "NanoSciFactRetrieval",
            "--data-dir",
            str(nano_sample),
            "--max-length",
            length,
            "--cache-dir",
            str(cache),
            "--output",
            str(runs[length]),
            "--quiet",
        )
    args = (
        "compare",
        str(runs[str(SHORT_MAX_LENGTH)]),
        "--reference",
        str(runs["256"]),
        "--benchmark",
        NANO,
        "--per-query",
        "--gate",
        "both",
        "--allow-drift",
    )
    code, out, _ = run_cli(monkeypatch, capsys, *args, "--format", "json")
    suite = json.loads(out)["suite"]
    assert code == 1 and suite["tasks"] == ["NanoSciFactRetrieval"] and suite["queries"] == 50
    assert suite["delta"] < -1 and 0 < suite["p_value"] < 1 and suite["status"] == "REGRESSION"
    for fmt, said in (("text", "suite (1 task, 50 queries)"), ("markdown", "**Suite**")):
        code, out, _ = run_cli(monkeypatch, capsys, *args, "--format", fmt)
        assert code == 1 and said in out and "p = " in out
    code, page, _ = run_cli(
        monkeypatch,
        capsys,
        "table",
        str(runs[str(SHORT_MAX_LENGTH)]),
        str(runs["256"]),
        "--benchmark",
        NANO,
        "--reference",
        str(next((runs["256"]).glob("*/*"))),
        "--format",
        "html",
    )
    assert code == 0 and "the suite</h3>" in page and "task-stratified" in page


def test_a_suite_gate_without_evidence_is_an_error_not_a_pass(tmp_path, monkeypatch, capsys):
    """Runs written without per-query evidence cannot be gated on their suite: exit 2 saying
    so, never a pass decided on nothing."""
    from result_files import write_results

    names = [t.name for t in registry().benchmark(NANO).tasks][:2]
    for side, value in (("run", 0.4), ("ref", 0.6)):
        write_results(tmp_path / side, "org/model", "rev", dict.fromkeys(names, value))
    for gate in ("suite", "both"):
        code, out, err = compare(
            monkeypatch, capsys, tmp_path / "run", tmp_path / "ref", "--gate", gate
        )
        assert code == 2 and f"--gate {gate} needs per-query evidence" in err, (out, err)
