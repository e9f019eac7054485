"""compare: pass, regression beyond tolerance, missing task, settings drift, unusable input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_compare
from result_files import write_results

from linq_eval.errors import DriftError, ResultsError
from linq_eval.results.compare import compare
from linq_eval.results.metrics import score_task
from linq_eval.results.reading import resolve_one
from linq_eval.results.tables import get_benchmark_spec
from linq_eval.run_record import ScoreSettings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

LINQ = "Linq-AI-Research/Linq-Embed-Mistral"
PUBLISHED = f"published:{LINQ}"
SETTINGS = {
    "model": LINQ,
    "revision": "0c1a0b0589177079acc552433cad51d7c9132379",
    "dtype": "float16",
    "max_length": 512,
    "policy": "e5",
    "instructions": "e5",
    "instructions_version": "1",
    "prompt_hash": "abc123",
    "pooling": "last",
}


TASK_SETTINGS = ScoreSettings(
    model=LINQ,
    revision=SETTINGS["revision"],
    model_source=LINQ,
    dtype="bfloat16",
    max_length=512,
    pooling="last",
    eos="append",
    bos="require",
    special_tokens={"prefix": [1], "suffix": [2]},
    padding_side="right",
    attn_implementation="sdpa",
    policy="e5",
    unnormalised_task_types=("Classification", "MultilabelClassification"),
    template="Instruct: {instruction}\nQuery: ",
    instructions="e5",
    instructions_version="1.0.0",
    prompt_hash="0123456789abcdef",
    embedding_precision="float16",
    mteb_version="2.26.24",
).as_record()
"""Every score-deciding setting of a task, as a run records it in the task's entry."""


def write_run(
    root: Path,
    scores: dict[str, float],
    settings: dict[str, Any] | None = None,
    model: str = LINQ,
    task_settings: dict[str, Any] | None = None,
    extra: dict[str, dict[str, float]] | None = None,
) -> Path:
    """A run folder of ``model`` at revision ``rev`` under ``root`` (see write_results), with
    the folder's ``settings`` and each task's own ``task_settings`` in its run record."""
    write_results(root, model, "rev", scores, settings, extra, task_settings=task_settings)
    return root


def published(task: str) -> float:
    """Linq-Embed-Mistral's published score (x100) on a task."""
    ref = resolve_one(PUBLISHED, "reference")
    score = score_task(ref, get_benchmark_spec().task(task)).score
    assert score is not None
    return score


@pytest.fixture
def compare_cli(monkeypatch, capsys):
    """``compare_cli(RUN, REFERENCE, *ARGS)``: ``linq-eval compare RUN --reference REFERENCE
    ARGS`` in-process; (exit code, stdout, stderr)."""

    def compare_cli(run: Path, reference: str | Path, *args: str) -> tuple[int, str, str]:
        return run_compare(monkeypatch, capsys, run, reference, *args)

    return compare_cli


def test_pass_within_tolerance(tmp_path, compare_cli):
    scifact, nfcorpus = published("SciFact"), published("NFCorpus")
    write_run(tmp_path, {"SciFact": (scifact + 0.2) / 100, "NFCorpus": (nfcorpus - 0.3) / 100})
    code, out, _ = compare_cli(tmp_path, PUBLISHED, "--tasks", "SciFact", "NFCorpus")
    assert code == 0, out
    assert "PASS" in out and "REGRESSION" not in out
    assert "records no settings" in out  # the baseline's settings are unknown, and said so


def test_drop_beyond_tolerance_fails(tmp_path, compare_cli):
    scifact, nfcorpus = published("SciFact"), published("NFCorpus")
    write_run(tmp_path, {"SciFact": scifact / 100, "NFCorpus": (nfcorpus - 0.8) / 100})
    args = (tmp_path, PUBLISHED, "--tasks", "SciFact", "NFCorpus")
    code, out, _ = compare_cli(*args)
    assert code == 1
    assert "REGRESSION" in out and "FAIL: 1 regression(s) (NFCorpus -0.80)" in out
    code, out, _ = compare_cli(*args, "--tolerance", "1.0")
    assert code == 0, out


def test_drop_of_exactly_the_tolerance_passes(tmp_path):
    write_run(tmp_path, {"SciFact": 0.70})
    ref = tmp_path / "ref"
    write_run(ref, {"SciFact": 0.705})
    result = compare(str(tmp_path), str(ref), tasks=["SciFact"], tolerance=0.5)
    assert result.passed and result.tasks[0].status == "ok"
    assert compare(str(tmp_path), str(ref), tasks=["SciFact"], tolerance=0.49).regressions


def test_missing_task_fails(tmp_path, compare_cli):
    write_run(tmp_path, {"SciFact": published("SciFact") / 100})
    code, out, _ = compare_cli(
        tmp_path, PUBLISHED, "--tasks", "SciFact", "NFCorpus", "--format", "json"
    )
    assert code == 1
    doc = json.loads(out)
    assert doc["passed"] is False and doc["missing"] == ["NFCorpus"]
    assert [t["status"] for t in doc["tasks"]] == ["MISSING", "ok"]


def test_default_tasks_are_the_references(tmp_path):
    """Without --tasks, every task the reference scores is compared: a partial run fails."""
    write_run(tmp_path, {"SciFact": published("SciFact") / 100})
    result = compare(str(tmp_path), PUBLISHED, task_types=["Retrieval"])
    assert len(result.tasks) == 15 and len(result.missing) == 14 and not result.passed


def test_drift_is_refused_then_allowed(tmp_path, compare_cli):
    run, ref = tmp_path / "run", tmp_path / "ref"
    write_run(run, {"SciFact": 0.78}, settings=SETTINGS)
    write_run(ref, {"SciFact": 0.78}, settings={**SETTINGS, "max_length": 4096, "dtype": "bf16"})
    args = (run, ref, "--tasks", "SciFact")
    code, _, err = compare_cli(*args)
    assert code == 2
    assert "max_length: run 512 vs reference 4096" in err and "--allow-drift" in err
    code, out, _ = compare_cli(*args, "--allow-drift")
    assert code == 0
    assert "settings drift (allowed): dtype: run 'float16' vs reference 'bf16'" in out
    assert "settings drift (allowed): max_length: run 512 vs reference 4096" in out
    with pytest.raises(DriftError):
        compare(str(run), str(ref), tasks=["SciFact"])


@pytest.mark.parametrize(
    ("key", "other"),
    [("pooling", "mean"), ("embedding_precision", "float32"), ("instructions_version", "1.0.1")],
)
def test_a_run_differing_in_one_score_setting_is_refused(tmp_path, compare_cli, key, other):
    run, ref = tmp_path / "run", tmp_path / "ref"
    write_run(run, {"SciFact": 0.78, "NFCorpus": 0.4}, task_settings={**TASK_SETTINGS, key: other})
    write_run(ref, {"SciFact": 0.78, "NFCorpus": 0.4}, task_settings=TASK_SETTINGS)
    args = (run, ref, "--tasks", "SciFact", "NFCorpus")
    code, _, err = compare_cli(*args)
    assert code == 2, err
    expected = f"{key}: run {other!r} vs reference {TASK_SETTINGS[key]!r} (NFCorpus, SciFact)"
    assert expected in err and "--allow-drift" in err
    code, out, _ = compare_cli(*args, "--allow-drift")
    assert code == 0, out
    assert f"settings drift (allowed): {expected}" in out
    with pytest.raises(DriftError):
        compare(str(run), str(ref), tasks=["SciFact"])


def test_only_score_settings_of_the_compared_tasks_count(tmp_path):
    """The attention kernel separates cached embeddings but does not decide a score; a task's
    own prompt hash is compared, and only for the tasks compared."""
    run, ref = tmp_path / "run", tmp_path / "ref"
    write_run(
        run, {"SciFact": 0.78}, task_settings={**TASK_SETTINGS, "attn_implementation": "eager"}
    )
    write_run(ref, {"SciFact": 0.78}, task_settings=TASK_SETTINGS)
    assert compare(str(run), str(ref), tasks=["SciFact"]).drift == []
    write_run(run, {"SciFact": 0.78}, task_settings={**TASK_SETTINGS, "prompt_hash": "f" * 16})
    with pytest.raises(DriftError, match="prompt_hash: run 'ffff"):
        compare(str(run), str(ref), tasks=["SciFact"])


def test_same_settings_do_not_drift(tmp_path):
    run, ref = tmp_path / "run", tmp_path / "ref"
    write_run(run, {"SciFact": 0.78}, settings={**SETTINGS, "device_note": "ignored"})
    write_run(ref, {"SciFact": 0.78}, settings=SETTINGS)
    result = compare(str(run), str(ref), tasks=["SciFact"])
    assert result.passed and result.drift == [] and result.notes == []


@pytest.mark.parametrize("case", ["broken_json", "absent", "empty", "two_models"])
def test_unusable_input_exits_2(tmp_path, compare_cli, case):
    run = tmp_path / "run"
    if case == "broken_json":
        write_run(run, {"SciFact": 0.7})
        (run / "results" / LINQ.replace("/", "__") / "rev" / "SciFact.json").write_text(
            '{"task_name": "SciFact", "scores": ', encoding="utf-8"
        )
    elif case == "empty":
        run.mkdir()
    elif case == "two_models":
        write_run(run, {"SciFact": 0.7})
        write_run(run, {"SciFact": 0.6}, model="intfloat/e5-mistral-7b-instruct")
    code, _, err = compare_cli(run, PUBLISHED, "--tasks", "SciFact")
    assert code == 2, err
    assert err.startswith("error: ")


def test_unknown_names_exit_2(tmp_path, compare_cli):
    write_run(tmp_path, {"SciFact": 0.7})
    code, _, err = compare_cli(tmp_path, PUBLISHED, "--tasks", "SciFakt")
    assert code == 2 and "Did you mean: 'SciFact'" in err
    code, _, err = compare_cli(tmp_path, "published:Linq-Embed")
    assert code == 2 and "Linq-AI-Research/Linq-Embed-Mistral" in err
    with pytest.raises(ResultsError):
        resolve_one(str(tmp_path / "nowhere"), "run")


def test_metric_change_is_noted_and_markdown(tmp_path, compare_cli):
    write_run(tmp_path, {"SprintDuplicateQuestions": published("SprintDuplicateQuestions") / 100})
    code, out, _ = compare_cli(
        tmp_path, PUBLISHED, "--tasks", "SprintDuplicateQuestions", "--format", "markdown"
    )
    assert code == 0
    assert out.startswith("**PASS**")
    assert "| SprintDuplicateQuestions | PairClassification |" in out
    assert "run max_ap, reference cos_sim_ap" in out


def test_run_is_read_in_the_published_metric(tmp_path, compare_cli):
    """cosine_ap equal to the published cos_sim_ap, max_ap 0.4 higher: a delta of 0.00."""
    name = "SprintDuplicateQuestions"
    sprint = published(name)
    write_run(tmp_path, {name: (sprint + 0.4) / 100}, extra={name: {"cosine_ap": sprint / 100}})
    code, out, _ = compare_cli(tmp_path, PUBLISHED, "--tasks", name, "--format", "json")
    assert code == 0, out
    (task,) = json.loads(out)["tasks"]
    assert (task["run_metric"], task["reference_metric"]) == ("cosine_ap", "cos_sim_ap")
    assert task["delta"] == 0.0 and task["status"] == "ok" and not task["metric_changed"]
    assert task["run"] == round(sprint, 2)
    code, out, _ = compare_cli(tmp_path, PUBLISHED, "--tasks", name)
    assert "+0.00" in out and "+0.40" not in out and "Different metrics" not in out


def test_regression_cannot_hide_behind_max_ap(tmp_path):
    """max_ap equal to the published value, cosine_ap 0.8 below: a regression."""
    name = "TwitterSemEval2015"
    value = published(name)
    write_run(tmp_path, {name: value / 100}, extra={name: {"cosine_ap": (value - 0.8) / 100}})
    result = compare(str(tmp_path), PUBLISHED, tasks=[name])
    assert [t.task for t in result.regressions] == [name] and not result.passed
    assert result.tasks[0].delta == pytest.approx(-0.8)


def test_renamed_spearman_is_the_same_metric(tmp_path):
    """cosine_spearman (mteb 2) against cos_sim_spearman (published): no note, gated."""
    write_run(tmp_path, {"STS12": published("STS12") / 100, "SummEval": 0.2})
    result = compare(str(tmp_path), PUBLISHED, tasks=["STS12", "SummEval"])
    assert [t.status for t in result.tasks] == ["ok", "REGRESSION"]
    assert [t.run_metric for t in result.tasks] == ["cosine_spearman", "cosine_spearman"]
    assert not any("metric" in n for n in result.notes)


def test_reranking_map_at_1000_is_the_published_map(tmp_path):
    """mteb 2's map_at_1000 is mteb 1.x's map (tests/test_metrics.py): gated, no note."""
    write_run(tmp_path, {"SciDocsRR": (published("SciDocsRR") - 2.0) / 100})
    result = compare(str(tmp_path), PUBLISHED, tasks=["SciDocsRR"])
    assert [t.status for t in result.regressions] == ["REGRESSION"]
    assert result.tasks[0].run_metric == "map_at_1000"
    assert not any("metric" in n for n in result.notes)


def test_metric_change_is_kept_out_of_the_gate(tmp_path, compare_cli):
    """A file with only max_ap has no cos_sim_ap computation: shown, noted, gated if allowed."""
    name = "TwitterURLCorpus"
    write_run(tmp_path, {name: (published(name) - 2.0) / 100})
    args = (tmp_path, PUBLISHED, "--tasks", name)
    code, out, _ = compare_cli(*args)
    assert code == 0, out
    assert "metric changed" in out and "-2.00" in out
    assert "run max_ap, reference cos_sim_ap (different computations); not gated" in out
    assert f"Not gated (metric changed): {name}." in out
    code, out, _ = compare_cli(*args, "--allow-metric-change")
    assert code == 1 and f"FAIL: 1 regression(s) ({name} -2.00)" in out


def test_task_types_option_takes_several_values(tmp_path, compare_cli):
    write_run(tmp_path, {"SciFact": published("SciFact") / 100})
    code, out, _ = compare_cli(
        tmp_path, PUBLISHED, "--task-types", "Retrieval", "STS", "--format", "json"
    )
    assert code == 1
    assert len(json.loads(out)["tasks"]) == 25  # 15 Retrieval + 10 STS


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_ci_gate_script_propagates_the_verdict(tmp_path):
    """scripts/ci_retrieval_gate.sh on an existing run folder (SKIP_RUN=1): exit 1 on a drop."""
    out = tmp_path / "ci"
    tasks = {"SciFact": published("SciFact"), "NFCorpus": published("NFCorpus") - 1.0}
    write_run(out, {name: value / 100 for name, value in tasks.items()}, settings=SETTINGS)
    script = Path(__file__).parents[1] / "scripts" / "ci_retrieval_gate.sh"
    env = {
        **os.environ,
        "SKIP_RUN": "1",
        "TASKS": "SciFact NFCorpus",
        "BENCHMARK": "MTEB(eng, v1)",
        "REFERENCE": "published:Linq-AI-Research/Linq-Embed-Mistral",
        "LINQ_EVAL": f"{sys.executable} -m linq_eval.cli",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
    proc = subprocess.run(
        ["bash", str(script), str(out)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stderr
    assert "retrieval gate: FAIL" in proc.stderr
    compare_md = (out / "compare.md").read_text(encoding="utf-8")
    assert compare_md.startswith("**FAIL**") and "NFCorpus -1.00" in compare_md
    assert "Retrieval gate" in (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert (out / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
