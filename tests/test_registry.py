"""mteb's registry as data (``linq_eval.registry``) and result files read without mteb
(``linq_eval.results.result_file``): each checked against mteb's own objects."""

from __future__ import annotations

import json
import math

import mteb
import pytest
from mteb.benchmarks.benchmark import BenchmarkAggregation  # what the leaderboard averages with

from linq_eval.errors import ConfigError, ResultsError
from linq_eval.provenance import MTEB_DISTRIBUTIONS, mteb_distribution_problem, mteb_version
from linq_eval.registry import registry, snapshot_path, task_info
from linq_eval.results.reading import load_baselines
from linq_eval.results.result_file import read_result_file
from linq_eval.results.tables import LEADERBOARD_MEAN_TASK, build_table

CHECKED_BENCHMARKS = ("MTEB(eng, v1)", "MTEB(eng, v2)", "NanoBEIR")


@pytest.mark.parametrize("name", CHECKED_BENCHMARKS)
def test_a_benchmark_in_the_snapshot_is_mtebs_field_by_field(name):
    bench = mteb.get_benchmark(name)
    mine = registry().benchmark(name)
    assert mine.name == bench.name
    assert list(mine.tasks) == [task_info(t) for t in bench.tasks]


def test_the_snapshot_knows_every_task_and_benchmark_mteb_does():
    reg = registry()
    every = mteb.get_tasks(
        exclude_superseded=False, exclude_aggregate=False, exclude_private=False, exclude_beta=False
    )
    assert set(reg.tasks) == {t.metadata.name for t in every}
    assert set(reg.benchmarks) == {b.name for b in mteb.get_benchmarks()}
    assert reg.mteb_version == mteb.__version__ == mteb_version()
    sample = [reg.task(n) for n in ("SciFact", "CQADupstackRetrieval", "STS17", "SciDocsRR")]
    assert sample == [task_info(mteb.get_task(t.name)) for t in sample]
    assert reg.task("NanoSciFactRetrieval").adapted_from == ("SciFact",)
    first = mteb.get_benchmark("MTEB(eng, v1)").tasks[0].metadata.name
    assert reg.benchmark("MTEB(eng, v1)").tasks[0].name == first


def test_a_snapshot_of_another_mteb_version_is_made_again(tmp_path, monkeypatch):
    monkeypatch.setenv("LINQ_EVAL_CACHE", str(tmp_path))
    path = snapshot_path(mteb_version())
    path.parent.mkdir(parents=True)
    stale = {"format": 1, "mteb": "0.0.1", "tasks": {}, "benchmarks": {}}
    path.write_text(json.dumps(stale), encoding="utf-8")
    registry.cache_clear()
    try:
        assert len(registry().tasks) > 1000
        assert json.loads(path.read_text(encoding="utf-8"))["mteb"] == mteb_version()
    finally:
        registry.cache_clear()


def test_two_distributions_of_mteb_must_agree():
    assert MTEB_DISTRIBUTIONS == ("mteb", "mteb-core")
    assert mteb_distribution_problem({"mteb": "2.26.24", "mteb-core": None}) is None
    assert mteb_distribution_problem({"mteb": "2.26.24", "mteb-core": "2.26.24"}) is None
    problem = mteb_distribution_problem({"mteb": "2.26.20", "mteb-core": "2.26.24"})
    assert "mteb 2.26.20 and mteb-core 2.26.24" in problem
    assert "pip install mteb-core==2.26.20" in problem
    assert mteb_distribution_problem() is None  # this environment


def test_every_shipped_result_file_scores_as_mteb_scores_it():
    """Each baseline file, filtered to its benchmark's splits and subsets and averaged, as
    ``TaskResult.validate_and_filter_scores(task).get_score()`` gives it."""
    checked = 0
    for set_name, bench_name in (("published", "MTEB(eng, v1)"), ("published-v2", "MTEB(eng, v2)")):
        bench = {t.metadata.name: t for t in mteb.get_benchmark(bench_name).tasks}
        mine = {t.name: t for t in registry().benchmark(bench_name).tasks}
        for rs in load_baselines(set_name):
            for name, path in rs.task_files.items():
                if name not in bench:
                    continue
                theirs = mteb.TaskResult.from_disk(path)
                light = read_result_file(path)
                assert light.missing(mine[name]) == theirs.get_missing_evaluations(bench[name])
                want = theirs.validate_and_filter_scores(bench[name]).get_score()
                got = light.filtered(mine[name]).score()
                assert got == want or (math.isnan(got) and math.isnan(want)), path
                assert light.mteb_version == theirs.mteb_version
                checked += 1
    assert checked > 900


def test_complete_means_are_mtebs_benchmark_aggregation():
    table = build_table(load_baselines("published-v2"), "MTEB(eng, v2)")
    bench = mteb.get_benchmark("MTEB(eng, v2)")
    row = table.rows[0]
    results = [
        mteb.TaskResult.from_disk(
            row.result_set.task_files[t.metadata.name]
        ).validate_and_filter_scores(t)
        for t in bench.tasks
    ]
    mean = BenchmarkAggregation.MEAN_TASK.aggregate(results)["Mean(Task)"]
    assert row.means[LEADERBOARD_MEAN_TASK].complete
    assert row.means[LEADERBOARD_MEAN_TASK].value == pytest.approx(100 * mean, abs=1e-9)
    by_type = BenchmarkAggregation.TASK_TYPES.aggregate(results)
    for task_type, value in by_type.items():
        column = next(c for c in row.means if c.startswith(f"{task_type} ("))
        assert row.means[column].value == pytest.approx(100 * value, abs=1e-9)


def test_a_file_in_no_known_layout_is_an_error_naming_it(tmp_path):
    path = tmp_path / "SciFact.json"
    path.write_text('{"hello": 1}', encoding="utf-8")
    with pytest.raises(ResultsError, match="SciFact.json: not an mteb TaskResult JSON"):
        read_result_file(path)


def test_a_missing_mteb_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("linq_eval.registry.mteb_version", lambda: None)
    registry.cache_clear()
    try:
        with pytest.raises(ConfigError, match="mteb is not installed"):
            registry()
    finally:
        registry.cache_clear()
