"""The one task selector: each task as its benchmark scores it, in run, plan, table and compare."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import mteb
import pytest
from cli_helpers import run_cli
from conftest import MORE_DATA, shared
from result_files import write_results

from linq_eval.benchmarks import DEFAULT_BENCHMARK, mteb_tasks, select, select_tasks
from linq_eval.errors import ConfigError, DataError
from linq_eval.results.compare import compare
from linq_eval.results.reading import resolve
from linq_eval.results.render import render
from linq_eval.results.tables import build_table, get_benchmark_spec
from linq_eval.run.local_data import load_local_task

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

MULTILINGUAL_V1 = {
    "AmazonCounterfactualClassification": ["en"],
    "AmazonReviewsClassification": ["en"],
    "MassiveIntentClassification": ["en"],
    "MassiveScenarioClassification": ["en"],
    "MTOPDomainClassification": ["en"],
    "MTOPIntentClassification": ["en"],
    "STS17": ["en-en"],
    "STS22": ["en"],
}
"""The eight multilingual tasks of MTEB(eng, v1) and the subsets it scores them on."""


def test_tasks_are_taken_from_the_default_benchmark_with_its_subsets_and_splits():
    for name, subsets in MULTILINGUAL_V1.items():
        (task,) = select_tasks(tasks=[name])
        assert list(task.hf_subsets) == subsets, name
        assert list(task.eval_splits) == ["test"], name
        assert len(mteb.get_task(name).hf_subsets) > 1  # mteb's whole task has more
    (msmarco,) = select_tasks(tasks=["MSMARCO"])
    assert list(msmarco.eval_splits) == ["dev"]


def test_benchmark_and_tasks_select_from_that_benchmark():
    chosen = select(DEFAULT_BENCHMARK, ["STS22.v2", "STS17", "AmazonCounterfactualClassification"])
    assert chosen.names == ["STS22.v2", "STS17", "AmazonCounterfactualClassification"]
    assert chosen.whole == frozenset({"STS22.v2"})  # not in MTEB(eng, v1): runs whole
    sts22v2, sts17, amazon = chosen.tasks
    assert len(sts22v2.hf_subsets) == len(mteb.get_task("STS22.v2").hf_subsets) > 1
    assert (sts17.hf_subsets, amazon.hf_subsets) == (("en-en",), ("en",))
    # the same task from another benchmark: MTEB(eng, v2) keeps STS17 too, as en-en
    assert select("MTEB(eng, v2)", ["STS17"]).tasks[0].hf_subsets == ("en-en",)
    assert select("MTEB(eng, v2)", ["STS17"]).benchmark == "MTEB(eng, v2)"
    with pytest.raises(ConfigError, match="--task-types selects task types"):
        select(DEFAULT_BENCHMARK, ["STS17"], ["STS"])


def test_plan_lists_subsets_and_says_which_task_runs_whole(monkeypatch, capsys, tmp_path):
    args = [
        "plan",
        "--model",
        "all-minilm-l6-v2",
        "--benchmark",
        DEFAULT_BENCHMARK,
        "--tasks",
        "STS17",
        "STS22.v2",
        "--output",
        str(tmp_path),
    ]
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert f"# tasks as {DEFAULT_BENCHMARK} scores them" in out
    sts17 = next(line for line in out.splitlines() if line.startswith("STS17 "))
    assert "test: en-en" in sts17 and "whole" not in sts17
    sts22 = next(line for line in out.splitlines() if line.startswith("STS22.v2 "))
    assert "test: 18: en, de, es ..." in sts22 and "whole task: not in the benchmark" in sts22
    code, out, err = run_cli(monkeypatch, capsys, *args, "--format", "json")
    plan = json.loads(out)
    assert plan["benchmark"] == DEFAULT_BENCHMARK
    assert plan["tasks"]["STS17"]["subsets"] == ["en-en"]
    assert plan["tasks"]["STS17"]["in_benchmark"] is True
    assert plan["tasks"]["STS22.v2"]["in_benchmark"] is False
    # the estimate counts the benchmark's subset only: en-en is 250 pairs, 500 texts
    assert plan["tasks"]["STS17"]["texts"] == 500


def test_a_run_holding_extra_subsets_is_tabled_and_compared_on_the_benchmarks(tmp_path):
    """A whole-task STS17 file (en-en and two other subsets) reads as its en-en score."""
    model = "org/model"
    extra = {"test": {"en-en": 0.80, "ko-ko": 0.10, "es-es": 0.30}}
    write_results(tmp_path / "whole", model, "rev", {"STS17": extra, "SICK-R": 0.75})
    write_results(tmp_path / "ref", model, "rev", {"STS17": 0.80, "SICK-R": 0.75})
    whole = str(tmp_path / "whole")

    rows = list(
        csv.DictReader(io.StringIO(render(build_table(resolve(whole)), "csv", per_task=True)))
    )
    assert rows[0]["STS17"] == "80.00"  # not the mean over three subsets (40.00)
    spec = get_benchmark_spec()
    assert spec.task("STS17").hf_subsets == ("en-en",)

    result = compare(whole, str(tmp_path / "ref"), tasks=["STS17"])
    assert result.passed and result.tasks[0].run == pytest.approx(80.0)
    lower = tmp_path / "lower"
    write_results(lower, model, "rev", {"STS17": {"test": {"en-en": 0.70, "ko-ko": 0.99}}})
    result = compare(str(lower), str(tmp_path / "ref"), tasks=["STS17"])
    assert [t.task for t in result.regressions] == ["STS17"]
    assert result.tasks[0].run == pytest.approx(70.0)  # the extra subset cannot lift it


def test_compare_notes_a_task_the_benchmark_lacks(tmp_path):
    write_results(tmp_path / "a", "org/model", "rev", {"STS22.v2": 0.6})
    result = compare(str(tmp_path / "a"), str(tmp_path / "a"), tasks=["STS22.v2"])
    assert result.passed
    assert any("Not in MTEB(eng, v1)" in note and "STS22.v2" in note for note in result.notes)


def test_ci_gate_script_passes_the_benchmark_to_run(tmp_path):
    """The gate's run takes its tasks from BENCHMARK (here a dry run shows the plan)."""
    script = Path(__file__).parents[1] / "scripts" / "ci_retrieval_gate.sh"
    env = {
        **os.environ,
        "MODEL": "all-minilm-l6-v2",
        "TASKS": "STS17",
        "BENCHMARK": "MTEB(eng, v2)",
        "RUN_ARGS": "--dry-run",
        "LINQ_EVAL": f"{sys.executable} -m linq_eval.cli",
    }
    proc = subprocess.run(
        ["bash", str(script), str(tmp_path / "ci")],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "# tasks as MTEB(eng, v2) scores them" in proc.stdout, proc.stderr
    sts17 = next(line for line in proc.stdout.splitlines() if line.startswith("STS17 "))
    assert "test: en-en" in sts17
    assert proc.returncode == 2  # nothing was run, so there is nothing to compare


def test_local_data_reads_only_the_selected_subsets_and_splits():
    """../shared/data/more holds STS17's en-en and AmazonCounterfactual's en only: the
    benchmark's tasks load from it, mteb's whole STS17 names the first subset it lacks."""
    more = shared(MORE_DATA)
    sts17, amazon = mteb_tasks(select(tasks=["STS17", "AmazonCounterfactualClassification"]))
    try:
        assert load_local_task(sts17, more) and list(sts17.dataset) == ["en-en"]
        assert sts17.dataset["en-en"]["test"].num_rows == 250
        assert load_local_task(amazon, more) and list(amazon.dataset) == ["en"]
        assert sorted(amazon.dataset["en"]) == ["test", "train"]  # not validation
    finally:
        sts17.unload_data()
        amazon.unload_data()
    missing = r"reads subset '\w\w-\w\w' from a subfolder .*present: en-en"
    with pytest.raises(DataError, match=missing):
        load_local_task(mteb.get_task("STS17"), more)


def test_table_selects_tasks_and_types_through_the_selector(tmp_path, monkeypatch, capsys):
    """table --tasks / --task-types: the selector's tasks, each as the benchmark scores it."""
    extra = {"test": {"en-en": 0.80, "ko-ko": 0.10}}
    whole = mteb.get_task("STS22.v2")  # not in MTEB(eng, v1): tabled whole
    sts22 = {"test": {s: 0.9 if s == "en" else 0.3 for s in whole.hf_subsets}}
    write_results(tmp_path, "org/model", "rev", {"STS17": extra, "STS22.v2": sts22, "SciFact": 0.7})
    args = ["table", str(tmp_path), "--format", "json", "--per-task"]
    code, out, err = run_cli(monkeypatch, capsys, *args, "--tasks", "STS17", "STS22.v2")
    assert code == 0, err
    doc = json.loads(out)
    (row,) = doc["rows"]
    assert doc["columns"] == ["Average (2)", "Mean(TaskType)", "STS (2)"]
    assert row["STS17"] == 80.0 and "SciFact" not in row  # en-en only; SciFact not selected
    every_subset = 100 * sum(sts22["test"].values()) / len(whole.hf_subsets)
    assert len(whole.hf_subsets) > 1 and row["STS22.v2"] == round(every_subset, 2)
    assert row["coverage"] == "2/2" and row["Average (2)"] == round((80 + every_subset) / 2, 2)

    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "table",
        "--baselines",
        "published-v2",
        "--benchmark",
        "MTEB(eng, v2)",
        "--task-types",
        "Retrieval",
        "--format",
        "json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["columns"] == ["Mean (Task)", "Mean (TaskType)", "Retrieval (10)"]
    linq = next(r for r in doc["rows"] if r["model"] == "Linq-AI-Research/Linq-Embed-Mistral")
    assert linq["Mean (Task)"] == linq["Retrieval (10)"] == 60.14  # the leaderboard's value

    code, _, err = run_cli(
        monkeypatch, capsys, "table", str(tmp_path), "--tasks", "STS17", "--task-types", "STS"
    )
    assert code == 2 and "--task-types selects task types" in err
    code, _, err = run_cli(monkeypatch, capsys, "table", str(tmp_path), "--tasks", "STS71")
    assert code == 2 and "Did you mean" in err


def test_prefetch_says_which_task_is_taken_whole(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))  # empty cache
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "prefetch",
        "--check",
        "--no-model",
        "--benchmark",
        DEFAULT_BENCHMARK,
        "--tasks",
        "STS17",
        "STS22.v2",
    )
    assert code == 1, err  # nothing is cached here
    sts17 = next(line for line in out.splitlines() if " STS17 " in line)
    sts22 = next(line for line in out.splitlines() if " STS22.v2 " in line)
    assert sts17.startswith("missing") and "whole" not in sts17
    assert sts22.startswith("missing") and sts22.endswith("whole task: not in the benchmark")
