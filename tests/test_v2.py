"""MTEB(eng, v2): its instructions, the published-v2 baselines, tables, compare and the plan.

Published numbers come from ../shared/reference/published_scores_v2.csv (never copied into the
repository); the run folders here are built with mteb's own classes and claim no score.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import run_cli
from conftest import PUBLISHED_SCORES_V2, shared

from linq_eval.benchmarks import task_names
from linq_eval.errors import ConfigError
from linq_eval.paths import CACHE_SUBDIR
from linq_eval.prompts.instruction_sets import (
    load_instruction_set,
    parse_instruction_file,
)
from linq_eval.results.reading import load_baselines
from linq_eval.results.tables import (
    LEADERBOARD_MEAN_TASK,
    LEADERBOARD_MEAN_TASK_TYPE,
    build_table,
    get_benchmark_spec,
)

V1 = "MTEB(eng, v1)"
V2 = "MTEB(eng, v2)"
SET = "published-v2"
LINQ = "Linq-AI-Research/Linq-Embed-Mistral"
REPO = Path(__file__).resolve().parents[1]

VERSIONED = {
    "BiorxivClusteringP2P.v2": "BiorxivClusteringP2P",
    "MedrxivClusteringP2P.v2": "MedrxivClusteringP2P",
    "MedrxivClusteringS2S.v2": "MedrxivClusteringS2S",
    "StackExchangeClustering.v2": "StackExchangeClustering",
    "StackExchangeClusteringP2P.v2": "StackExchangeClusteringP2P",
    "TwentyNewsgroupsClustering.v2": "TwentyNewsgroupsClustering",
    "STS22.v2": "STS22",
    "SummEvalSummarization.v2": "SummEval",
    "Touche2020Retrieval.v3": "Touche2020",
    "FEVERHardNegatives": "FEVER",
    "HotpotQAHardNegatives": "HotpotQA",
    "ClimateFEVERHardNegatives": "ClimateFEVER",
}
"""The issue's list of versioned successors and their v1 parents."""
NO_PARENT = {
    "ArXivHierarchicalClusteringP2P": "ArxivClusteringP2P",
    "ArXivHierarchicalClusteringS2S": "ArxivClusteringS2S",
}


@pytest.fixture(scope="module")
def published() -> list[dict[str, str]]:
    with shared(PUBLISHED_SCORES_V2).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------ instructions


def test_v2_instructions_list_41_tasks_with_parent_prompts(
    monkeypatch, capsys, e5_reference
) -> None:
    code, out, err = run_cli(
        monkeypatch, capsys, "instructions", "--benchmark", V2, "--format", "json"
    )
    assert code == 0, err
    prompts = json.loads(out)
    assert len(prompts) == 41
    assert set(prompts) == set(task_names(V2))
    assert {"CQADupstackGamingRetrieval", "CQADupstackUnixRetrieval"} <= set(prompts)
    assert not any(
        t.startswith("CQADupstack")
        for t in set(prompts) - {"CQADupstackGamingRetrieval", "CQADupstackUnixRetrieval"}
    )
    for task, parent in {**VERSIONED, **NO_PARENT}.items():
        expected = f"Instruct: {e5_reference[parent]['instruction']}\nQuery: "
        assert prompts[task]["query"] == expected, task
    e5 = load_instruction_set("e5")
    assert {t: e5.origins[t]["parent"] for t in VERSIONED} == VERSIONED
    for task, lender in NO_PARENT.items():
        assert e5.origins[task]["borrowed_from"] == lender
        assert "e5/utils.py" in e5.origins[task]["reason"]


def test_mteb_prompt_is_the_alternative_for_tasks_without_parent(monkeypatch, capsys) -> None:
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "instructions",
        "--benchmark",
        V2,
        "--format",
        "json",
        "--policy",
        "mteb",
        "--instructions",
        "mteb-v2",
    )
    assert code == 0, err
    prompts = json.loads(out)
    assert len(prompts) == 41
    for task in NO_PARENT:
        assert prompts[task]["query"] == "Instruct: Identify categories in user passages.\nQuery: "


def _instruction_file(tmp_path: Path, entries: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(
        'name: mine\nversion: "1"\nsource: "tests"\ntemplate: "Instruct: {instruction}\\nQuery: "\n'
        "tasks:\n" + entries,
        encoding="utf-8",
    )
    return path


def test_versioned_entry_must_carry_its_parents_text(tmp_path: Path) -> None:
    path = _instruction_file(
        tmp_path,
        '  FEVER: "Given a claim, retrieve documents that support or refute the claim"\n'
        '  SciFact: "Given a scientific claim, retrieve documents"\n'
        "  FEVERHardNegatives:\n"  # line 8
        "    parent: FEVER\n"
        '    instruction: "Given a claim, retrieve documents that support or refute the claim."\n'
        "  HotpotQAHardNegatives:\n"  # line 11
        "    parent: SciFact\n"
        '    instruction: "Given a scientific claim, retrieve documents"\n'
        "  ArXivHierarchicalClusteringP2P:\n"  # line 14
        "    borrowed_from: SciFact\n"
        '    instruction: "Given a scientific claim, retrieve documents"\n',
    )
    with pytest.raises(ConfigError) as info:
        parse_instruction_file(path)
    message = str(info.value)
    assert (
        f"{path}:8: instruction of 'FEVERHardNegatives' must equal its parent 'FEVER''s" in message
    )
    assert (
        f"{path}:11: mteb does not list 'SciFact' as a parent of 'HotpotQAHardNegatives'" in message
    )
    assert (
        f"{path}:14: 'ArXivHierarchicalClusteringP2P': 'borrowed_from' needs a 'reason'" in message
    )
    assert "has 3 problem(s)" in message
    fixed = _instruction_file(
        tmp_path,
        '  FEVER: "Given a claim"\n  FEVERHardNegatives:\n    parent: FEVER\n'
        '    instruction: "Given a claim"\n',
    )
    assert parse_instruction_file(fixed).origins == {"FEVERHardNegatives": {"parent": "FEVER"}}


def test_missing_instructions_are_listed_with_how_to_supply_them(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    path = _instruction_file(tmp_path, '  ArguAna: "Given a claim, find documents"\n')
    code, _, err = run_cli(
        monkeypatch, capsys, "plan", "--benchmark", V2, "--instructions", str(path)
    )
    assert code == 2
    assert "has no instruction for 40 task(s)" in err
    assert "'FEVERHardNegatives'" in err and "'STS22.v2'" in err
    assert "--instructions PATH" in err and "task_instructions/README.md" in err


# ------------------------------------------------------------------ the published-v2 set


def _expected_means(published: list[dict[str, str]]) -> dict[str, dict[str, float]]:
    """Per model: Mean (Task), Mean (TaskType) and each type's mean, computed from the CSV."""
    df = pd.read_csv(PUBLISHED_SCORES_V2)
    out = {}
    for model, rows in df.groupby("model"):
        by_type = rows.groupby("task_type")["main_score"].mean()
        counts = rows.groupby("task_type").size()
        means = {f"{t} ({counts[t]})": v for t, v in by_type.items()}
        means[LEADERBOARD_MEAN_TASK] = rows["main_score"].mean()
        means[LEADERBOARD_MEAN_TASK_TYPE] = by_type.mean()
        out[str(model)] = means
    assert len(out) == 8 and len(published) == 328
    return out


@pytest.fixture(scope="module")
def v2_table():
    return build_table(load_baselines(SET), V2)


def test_v2_table_reproduces_the_leaderboard_means(v2_table, published) -> None:
    expected = _expected_means(published)
    rows = {row.result_set.model: row for row in v2_table.rows}
    assert set(rows) == set(expected)
    for model, means in expected.items():
        row = rows[model]
        assert set(row.means) == set(means), model
        for column, value in means.items():
            assert row.means[column].complete
            assert row.means[column].value == pytest.approx(value, abs=1e-9), (model, column)
    linq = rows[LINQ].means
    assert f"{linq[LEADERBOARD_MEAN_TASK].format()} / {linq['Retrieval (10)'].format()}" == (
        "69.80 / 60.14"
    )


def test_shipped_files_hold_the_published_scores(published) -> None:
    sets = {rs.model: rs for rs in load_baselines(SET)}
    for row in published:
        rs = sets[row["model"]]
        assert rs.task_files[row["task"]].parent.name == row["revision"]
        score = rs.task_result(row["task"]).score()
        assert score == round(float(row["main_score"]) / 100, 6)
    assert sum(len(rs.task_files) for rs in sets.values()) == 328


def test_build_script_regenerates_the_shipped_files(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("build", REPO / "scripts/build_published_v2.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    module.main(str(shared(PUBLISHED_SCORES_V2)), tmp_path)
    shipped = REPO / "results" / "baselines" / SET
    built = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    ours = sorted(
        p.relative_to(shipped) for p in shipped.rglob("*") if p.is_file() and p.suffix == ".json"
    )
    assert built == ours and len(built) == 329
    for rel in built:
        assert (tmp_path / rel).read_bytes() == (shipped / rel).read_bytes(), rel


def test_v2_table_columns_in_every_format(monkeypatch, capsys) -> None:
    spec = get_benchmark_spec(V2)
    types = [f"{t} ({len(spec.of_type(t))})" for t in spec.types]
    columns = [LEADERBOARD_MEAN_TASK, LEADERBOARD_MEAN_TASK_TYPE, *types]
    assert "Retrieval (10)" in types and len(types) == 7

    def table(fmt: str) -> str:
        code, out, err = run_cli(
            monkeypatch, capsys, "table", "--baselines", SET, "--benchmark", V2, "--format", fmt
        )
        assert code == 0, err
        return out

    records = list(csv.DictReader(io.StringIO(table("csv"))))
    assert ["model", *columns] == [c for c in records[0] if c in ("model", *columns)]
    linq = next(r for r in records if r["model"] == LINQ)
    assert (linq["Mean (Task)"], linq["Retrieval (10)"]) == ("69.80", "60.14")
    doc = json.loads(table("json"))
    assert doc["columns"] == columns
    row = next(r for r in doc["rows"] if r["model"] == LINQ)
    assert (row["Mean (Task)"], row["Retrieval (10)"]) == (69.8, 60.14)
    markdown = table("markdown")
    assert "| Model | " + " | ".join(columns) + " |" in markdown
    assert re.search(
        r"\| Linq-Embed-Mistral \| 69\.80 \| [\d.]+ \|( [\d.]+ \|){4} 60\.14 \|", markdown
    )
    latex = table("latex")
    assert "Mean (Task) & Mean (TaskType)" in latex and "Retrieval (10)" in latex
    assert re.search(r"Linq-Embed-Mistral & 69\.80 & .* & 60\.14 &", latex)
    html = table("html")
    assert "Mean (TaskType)" in html and "Retrieval (10)" in html and "69.80" in html


def test_v1_table_keeps_the_card_columns() -> None:
    v1 = build_table(load_baselines("published"), V1)
    assert v1.columns[:3] == ["Retrieval (15)", "Average (56)", "Mean(TaskType)"]


# ------------------------------------------------------------------ compare


def _write_v2_run(root: Path, scores: dict[str, float]) -> Path:
    """A run folder with mteb result files for some v2 tasks, on the benchmark's subsets."""
    import mteb

    spec = get_benchmark_spec(V2)
    cache = mteb.ResultCache(cache_path=root)
    for name, value in scores.items():
        bt = spec.task(name)
        per_split = {
            split: {sub: {bt.main_score: value, "main_score": value} for sub in bt.hf_subsets}
            for split in bt.eval_splits
        }
        task = mteb.get_task(name)
        result = mteb.TaskResult.from_task_results(task, per_split, evaluation_time=1.0)
        cache.save_to_cache(result, model_name=LINQ, model_revision="test")
    return root / "results" / LINQ.replace("/", "__") / "test"


def test_compare_against_published_v2(tmp_path: Path, published, monkeypatch, capsys) -> None:
    linq = {r["task"]: float(r["main_score"]) / 100 for r in published if r["model"] == LINQ}
    tasks = [
        "FEVERHardNegatives",
        "ArXivHierarchicalClusteringP2P",
        "STS22.v2",
        "SummEvalSummarization.v2",
    ]
    run = _write_v2_run(tmp_path, {t: linq[t] for t in tasks})
    args = ["compare", str(run), "--reference", f"{SET}:{LINQ}", "--benchmark", V2]
    code, out, err = run_cli(monkeypatch, capsys, *args, "--tasks", *tasks, "--format", "json")
    assert code == 0, err + out
    doc = json.loads(out)
    assert [t["task"] for t in doc["tasks"]] and all(t["status"] == "ok" for t in doc["tasks"])
    assert all(abs(t["delta"]) < 1e-9 for t in doc["tasks"])
    assert {t["task"] for t in doc["tasks"]} == set(tasks)

    _write_v2_run(tmp_path, {"FEVERHardNegatives": linq["FEVERHardNegatives"] - 0.02})
    code, out, _ = run_cli(monkeypatch, capsys, *args, "--tasks", *tasks)
    assert code == 1 and "REGRESSION" in out and "FEVERHardNegatives" in out
    code, out, _ = run_cli(monkeypatch, capsys, *args)  # every task of the reference
    assert code == 1 and "MISSING" in out and "Touche2020Retrieval.v3" in out


def test_ci_gate_against_published_v2(tmp_path: Path, published) -> None:
    linq = {r["task"]: float(r["main_score"]) / 100 for r in published if r["model"] == LINQ}
    run = _write_v2_run(tmp_path / "ci", {t: linq[t] for t in ("SCIDOCS", "FEVERHardNegatives")})
    env = dict(
        os.environ,
        SKIP_RUN="1",
        TASKS="SCIDOCS FEVERHardNegatives",
        BENCHMARK=V2,
        BASELINES=SET,
        REFERENCE=f"{SET}:{LINQ}",
        LINQ_EVAL=f"{sys.executable} -m linq_eval.cli",
    )
    script = REPO / "scripts" / "ci_retrieval_gate.sh"
    proc = subprocess.run(
        ["bash", str(script), str(run)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "retrieval gate: PASS" in proc.stderr
    assert "FEVERHardNegatives" in (run / "compare.md").read_text(encoding="utf-8")
    assert "Mean (Task)" in (run / "report.html").read_text(encoding="utf-8")


# ------------------------------------------------------------------ plan


def test_plan_and_dry_run_succeed_offline(tmp_path: Path, monkeypatch, capsys) -> None:
    out_dir = str(tmp_path / "out")
    code, out, err = run_cli(monkeypatch, capsys, "plan", "--benchmark", V2, "--output", out_dir)
    assert code == 0, err
    assert "# 41 tasks (0 done)" in out and "cached" not in out
    code, out, err = run_cli(
        monkeypatch, capsys, "run", "--benchmark", V2, "--dry-run", "--output", out_dir
    )
    assert code == 0, err
    assert "# 41 tasks" in out


@pytest.fixture(scope="module")
def v1_run(tmp_path_factory) -> Path:
    """An output folder as a full MTEB(eng, v1) run leaves it: a result file for every task
    (the 12 CQADupstack subforums instead of their aggregate) and a non-empty cache folder."""
    import mteb

    from linq_eval.benchmarks import expanded_names, select

    root = tmp_path_factory.mktemp("v1run")
    folder = root / LINQ.replace("/", "__") / "0c1a0b0589177079acc552433cad51d7c9132379"
    folder.mkdir(parents=True)
    bench = mteb.get_benchmark(V1)
    for name in expanded_names(select(V1).tasks):
        task = next((t for t in bench.tasks if t.metadata.name == name), None) or mteb.get_task(
            name
        )
        if task.is_aggregate:
            continue
        main = task.metadata.main_score
        scores = {
            split: {sub: {main: 0.5, "main_score": 0.5} for sub in task.hf_subsets}
            for split in task.eval_splits
        }
        result = mteb.TaskResult.from_task_results(task, scores, evaluation_time=1.0)
        result.to_disk(folder / f"{name}.json")
    (root / CACHE_SUBDIR / "some-encoder").mkdir(parents=True)
    return root


def _plan(monkeypatch, capsys, output: Path, *extra: str) -> dict:
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "plan",
        "--benchmark",
        V2,
        "--output",
        str(output),
        "--format",
        "json",
        *extra,
    )
    assert code == 0, err
    return json.loads(out)


def test_plan_estimates_what_a_v1_run_left_in_the_cache(v1_run: Path, monkeypatch, capsys) -> None:
    plan = _plan(monkeypatch, capsys, v1_run)
    tasks = plan["tasks"]
    v1_names = set(task_names(V1, expand_aggregates=True))
    assert {t for t, e in tasks.items() if e["done"]} == set(tasks) & v1_names
    assert sum(e["done"] for e in tasks.values()) == 27
    for name in ("FEVERHardNegatives", "HotpotQAHardNegatives", "ClimateFEVERHardNegatives"):
        assert tasks[name]["cached_from"]["basis"] == "hard-negative subset"
        assert tasks[name]["tokens_to_encode"] == 0
    for name in ("MedrxivClusteringP2P.v2", "SummEvalSummarization.v2", "STS22.v2"):
        assert tasks[name]["cached_tokens_estimate"] == tasks[name]["tokens"], name
    # A successor whose dataset changed counts as new; Touche v3 keeps only its 49 queries.
    assert tasks["BiorxivClusteringP2P.v2"]["cached_tokens_estimate"] == 0
    assert tasks["Touche2020Retrieval.v3"]["cached_from"]["sides"] == ["queries"]
    assert tasks["ArXivHierarchicalClusteringP2P"]["cached_tokens_estimate"] == 0
    total, done, cached = plan["total_tokens"], plan["done_tokens"], plan["cached_tokens_estimate"]
    assert plan["tokens_to_encode"] == total - done - cached
    assert 0.4 < (done + cached) / total < 0.6  # 52% measured with mteb 2.26's statistics

    code, out, _ = run_cli(monkeypatch, capsys, "plan", "--benchmark", V2, "--output", str(v1_run))
    assert code == 0
    assert "to run (~100% cached: hard-negative subset as FEVER)" in out
    assert "more in the embedding cache" in out and "an estimate" in out


def test_cache_estimate_follows_the_prompts_and_the_cache(
    v1_run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    # mteb's prompts: the hard-negative queries get another instruction than FEVER's.
    plan = _plan(monkeypatch, capsys, v1_run, "--policy", "mteb", "--instructions", "mteb-v2")
    assert plan["tasks"]["FEVERHardNegatives"]["cached_from"]["sides"] == ["documents"]
    assert plan["tasks"]["FEVERHardNegatives"]["tokens_to_encode"] > 0
    # No embedding cache: nothing is counted as cached.
    bare = tmp_path / "bare"
    model = LINQ.replace("/", "__")
    shutil.copytree(v1_run / model, bare / model)
    plan = _plan(monkeypatch, capsys, bare)
    assert plan["cached_tokens_estimate"] == 0 and plan["done_tokens"] > 0
