"""mteb's own loader reads what linq-eval writes and ships, with the scores `linq-eval table`
shows; `linq-eval export` writes a submission for mteb's results repository that mteb loads back.

The session's one real run (all-MiniLM-L6-v2 on SciFact, STSBenchmark and Banking77 from
../shared/data, tests/conftest.py) serves every test here; its scores are checked against the
published MTEB scores.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import mteb
import pytest
from cli_helpers import run_cli
from conftest import PUBLISHED_MINILM, SHARED_DATA

from linq_eval.paths import baseline_sets_dir
from linq_eval.results.reading import load_results

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
BENCHMARK = "MTEB(eng, v1)"
RAN = tuple(PUBLISHED_MINILM)
"""The tasks of the shared run."""
SHOWN = 0.005 + 1e-9
"""How far a score may be from the two decimals `table` shows it with."""

pytestmark = pytest.mark.slow  # a real run through mteb


@pytest.fixture(scope="module")
def run_dir(minilm_run) -> Path:
    """The shared real run (conftest): all-MiniLM-L6-v2 on SciFact, STSBenchmark and Banking77,
    in a folder named ``results`` as mteb's ResultCache expects."""
    return minilm_run[0]


@pytest.fixture(scope="module")
def benchmark() -> mteb.Benchmark:
    return mteb.get_benchmark(BENCHMARK)


def mteb_cache_root(run: Path) -> Path:
    """The ``mteb.ResultCache`` root of a run folder: the folder above it (a run folder is a
    results tree; mteb reads ``<root>/results/<org__model>/<rev>``)."""
    (result_set,) = load_results(run)
    results_dir = result_set.path.parent.parent
    assert results_dir.name == "results", (
        f"{result_set.path} is not in mteb's ResultCache layout <root>/results/<org__model>/<rev>"
    )
    return results_dir.parent


def table_rows(monkeypatch, capsys, *args: str) -> dict[str, dict]:
    """`linq-eval table ARGS --per-task --format json`: model -> its row."""
    code, out, err = run_cli(monkeypatch, capsys, "table", *args, "--per-task", "--format", "json")
    assert code == 0, err
    return {row["model"]: row for row in json.loads(out)["rows"]}


def assert_same_scores(results, rows: dict[str, dict], benchmark) -> int:
    """mteb's per-task frame equals the table's per-task scores; returns how many were compared."""
    frame = results.to_dataframe().set_index("task_name")
    names = [t.metadata.name for t in benchmark.tasks]
    assert sorted(frame.columns.drop("is_public", errors="ignore")) == sorted(rows)
    compared = 0
    for model, row in rows.items():
        shown = {t: row[t] for t in names if row.get(t) is not None}
        from_mteb = {
            t: frame.at[t, model] * 100 for t in frame.index if not math.isnan(frame.at[t, model])
        }
        assert sorted(shown) == sorted(from_mteb), model
        for task, score in shown.items():
            assert abs(from_mteb[task] - score) <= SHOWN, (model, task, from_mteb[task], score)
            compared += 1
    return compared


def test_mteb_loads_a_run_with_the_scores_table_shows(run_dir, benchmark, monkeypatch, capsys):
    results = mteb.ResultCache(mteb_cache_root(run_dir)).load_results(
        tasks=benchmark, include_remote=False, validate_and_filter=True
    )
    (revision,) = {rs.revision for rs in load_results(run_dir)}
    assert [(m.model_name, m.model_revision) for m in results] == [(MINILM, revision)]
    # the whole folder, without naming tasks: the run record is no result file to mteb
    whole = mteb.ResultCache(mteb_cache_root(run_dir)).load_results(include_remote=False)
    assert [(m.model_name, m.model_revision) for m in whole] == [(MINILM, revision)]
    rows = table_rows(monkeypatch, capsys, str(run_dir))
    assert assert_same_scores(results, rows, benchmark) == len(RAN)
    for task in ("SciFact", "STSBenchmark"):
        assert rows[MINILM][task] == PUBLISHED_MINILM[task][1], task
    summary = results.get_benchmark_result()  # the leaderboard's summary table
    assert summary["Model"].tolist() == [MINILM]


def test_mteb_loads_the_shipped_baselines_with_the_scores_table_shows(
    benchmark, tmp_path, monkeypatch, capsys
):
    # the baseline set is a results root (<org__model>/<revision>/); mteb reads DIR/results/
    shutil.copytree(baseline_sets_dir() / "published", tmp_path / "results")
    results = mteb.ResultCache(tmp_path).load_results(
        tasks=benchmark, include_remote=False, require_model_meta=False, validate_and_filter=True
    )
    rows = table_rows(monkeypatch, capsys, "--baselines", "published")
    assert len(rows) == 11
    assert assert_same_scores(results, rows, benchmark) == 11 * 56
    summary = results.get_benchmark_result().set_index("Model")
    assert len(summary) >= 8  # mteb's summary keeps the models its registry knows
    for model, mean in summary["Mean (Task)"].items():
        assert abs(mean * 100 - rows[model]["Average (56)"]) <= SHOWN, model


def test_export_round_trip(run_dir, tmp_path, monkeypatch, capsys):
    submission = tmp_path / "submission"
    # the run read local files (--data-dir): not a reproduction of the hub data, refused
    code, _, err = run_cli(monkeypatch, capsys, "export", str(run_dir), "--to", str(submission))
    assert code == 2 and "--force" in err
    assert f"STSBenchmark: data_source {SHARED_DATA.resolve()}/" in err
    assert "(sha256:" in err and "not the hub dataset at revision" in err
    assert not submission.exists()
    code, out, err = run_cli(
        monkeypatch, capsys, "export", str(run_dir), "--to", str(submission), "--force"
    )
    assert code == 0, err
    (folder,) = (submission / "results").glob("*/*")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{task}.json" for task in RAN] + ["model_meta.json", "run_settings.jsonl"]
    )
    meta = json.loads((folder / "model_meta.json").read_text())
    assert folder.parent.name == meta["name"].replace("/", "__") and folder.name == meta["revision"]
    assert meta["name"] == MINILM and str(folder) in out

    (run_folder,) = (rs.path for rs in load_results(run_dir))
    loaded = mteb.ResultCache(submission).load_results(models=[MINILM], include_remote=False)
    (model,) = loaded.model_results
    assert (model.model_name, model.model_revision) == (MINILM, folder.name)
    exported, ran = (
        table_rows(monkeypatch, capsys, str(folder))[MINILM],
        table_rows(monkeypatch, capsys, str(run_dir))[MINILM],
    )
    assert (exported.pop("source"), ran.pop("source")) == ("mteb", "run")  # no run record
    assert (exported.pop("path"), ran.pop("path")) == (str(folder), str(run_folder))
    assert exported == ran
    assert sorted(r.task_name for r in model.task_results) == sorted(RAN)
    for task_result in model.task_results:
        assert abs(task_result.get_score() * 100 - ran[task_result.task_name]) <= SHOWN

    # forced, the submission's run_settings.jsonl says for each task where its data came from
    entries = [json.loads(x) for x in (folder / "run_settings.jsonl").read_text().splitlines()]
    assert sorted(e["task"] for e in entries) == sorted(RAN)
    for entry in entries:
        where = entry["linq_eval_deviations"]["data_source"]
        assert where.startswith(str(SHARED_DATA.resolve())), entry["task"]

    # the run's own revision folder exports the same files; exporting again changes nothing
    code, _, err = run_cli(
        monkeypatch, capsys, "export", str(run_folder), "--to", str(submission), "--force"
    )
    assert code == 0, err
    for path in folder.iterdir():
        if path.name != "run_settings.jsonl":
            assert path.read_bytes() == (run_folder / path.name).read_bytes()

    # a different result file already there is never overwritten
    (folder / "STSBenchmark.json").write_text("{}")
    code, _, err = run_cli(
        monkeypatch, capsys, "export", str(run_dir), "--to", str(submission), "--force"
    )
    assert code == 2 and "already holds other versions of STSBenchmark.json" in err
    assert (folder / "STSBenchmark.json").read_text() == "{}"


def test_export_refuses_what_the_results_repository_would_reject(
    run_dir, tmp_path, monkeypatch, capsys
):
    code, _, err = run_cli(
        monkeypatch, capsys, "export", str(baseline_sets_dir() / "published"), "--to", str(tmp_path)
    )
    assert code == 2 and "no model_meta.json" in err
    (result_set,) = load_results(run_dir)
    run = shutil.copytree(result_set.path, tmp_path / "run" / result_set.path.name)
    settings = run / "run_settings.jsonl"
    settings.write_text(settings.read_text().replace('"STSBenchmark"', '"STS12"'))
    code, _, err = run_cli(monkeypatch, capsys, "export", str(run), "--to", str(tmp_path / "out"))
    assert code == 2 and "STSBenchmark: test/default missing from run_settings.jsonl" in err
    assert not (tmp_path / "out").exists()
