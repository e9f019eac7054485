"""``linq-eval explain`` on known answers: runs made with one wrong setting, on real data, are
explained by the candidate that puts it right, and by no other.

- all-MiniLM-L6-v2 on SciFact and STSBenchmark at max_length 32 (its own is 256) misses the
  published scores; the max_length=256 candidate lands on them (within 0.05);
- the tiny random Mistral on STSBenchmark without EOS, against the session's run with EOS:
  the eos=append candidate gives the reference's embeddings, so its very score;
- a change of instructions re-encodes only the queries (SciFact sample): counted.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from cli_helpers import run_cli, run_here
from conftest import (
    MINILM_FOLDER,
    PUBLISHED_MINILM,
    REPO_ROOT,
    SCIFACT,
    TINY_ARGS,
    TINY_FOLDER,
    tiny_scifact_args,
)
from data_helpers import sample_beir
from result_files import write_results

from linq_eval.paths import CACHE_SUBDIR, EXPLAIN_SUBDIR

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
TASKS = ("SciFact", "STSBenchmark")


def digests(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def explain(monkeypatch, capsys, run: Path, reference: Path, *extra: str) -> tuple[int, dict]:
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "explain",
        str(run),
        "--reference",
        str(reference),
        "--tolerance",
        "0.05",
        "--format",
        "json",
        *extra,
    )
    assert code in (0, 1), out + err
    return code, json.loads(out)


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """all-MiniLM-L6-v2's published scores of SciFact and STSBenchmark as a result folder."""
    root = tmp_path_factory.mktemp("published")
    scores = {task: PUBLISHED_MINILM[task][1] / 100 for task in TASKS}
    return write_results(root, MINILM, "published", scores)


def test_a_shorter_max_length_is_named_and_closes_the_gap(
    minilm_run, minilm_short_run, published, tmp_path, monkeypatch, capsys
):
    output, _ = minilm_run
    wrong = shutil.copytree(minilm_short_run, tmp_path / "wrong")  # cut at 32 tokens
    cache = wrong / CACHE_SUBDIR  # its 32-token vectors, and the 256-token run's beside them
    shutil.copytree(output / CACHE_SUBDIR, cache, dirs_exist_ok=True)
    before = digests(wrong / MINILM_FOLDER)
    candidates = ("--candidates", "max_length=256", "policy")
    code, doc = explain(monkeypatch, capsys, wrong, published, *candidates)
    gaps = {g["task"]: g for g in doc["gaps"]}
    assert "SciFact" in gaps and gaps["SciFact"]["delta"] < -1  # 32 tokens cut its documents
    assert code == 0 and doc["passed"]
    for verdict in doc["verdicts"]:
        assert verdict["explained_by"] == ["max_length=256"], verdict
        tried = {t["candidate"]: t for t in verdict["tried"]}
        published_score = PUBLISHED_MINILM[verdict["task"]][1]
        assert tried["max_length=256"]["score"] == pytest.approx(published_score, abs=0.05)
        assert tried["max_length=256"]["encoded_texts"] == 0  # the 256-token run's cache
        assert abs(tried["policy=unnormalised"]["distance"]) > 0.05
    assert digests(wrong / MINILM_FOLDER) == before  # the run's own files, byte for byte
    candidate = wrong / EXPLAIN_SUBDIR / "max_length=256"
    code, out, _ = run_cli(monkeypatch, capsys, "table", str(candidate), "--tasks", *TASKS)
    assert code == 0 and "all-MiniLM-L6-v2" in out  # a results tree like any run's

    # a run made with the right settings has nothing to explain
    code, out, _ = run_cli(
        monkeypatch,
        capsys,
        "explain",
        str(output),
        "--reference",
        str(published),
        "--tasks",
        *TASKS,
        "--tolerance",
        "0.05",
    )
    assert code == 0 and "nothing to explain" in out, out


def test_a_run_without_eos_is_explained_by_the_eos_candidate(
    tiny_run, tmp_path, monkeypatch, capsys
):
    ref_output, _ = tiny_run
    cache = shutil.copytree(ref_output / CACHE_SUBDIR, tmp_path / "cache")
    no_eos = tmp_path / "no-eos"
    run_here(
        monkeypatch,
        capsys,
        "run",
        *TINY_ARGS,
        "--eos",
        "none",
        "--cache-dir",
        str(cache),
        "--output",
        str(no_eos),
        "--quiet",
    )
    reference = ref_output / TINY_FOLDER
    extra = ("--candidates", "eos", "pooling", "--cache-dir", str(cache))
    code, doc = explain(monkeypatch, capsys, no_eos, reference, *extra)
    (verdict,) = doc["verdicts"]
    assert verdict["task"] == "STSBenchmark" and verdict["explained_by"] == ["eos=append"]
    tried = {t["candidate"]: t for t in verdict["tried"]}
    assert tried["eos=append"]["distance"] == 0.0  # the reference's embeddings exactly
    assert tried["eos=append"]["encoded_texts"] == 0  # from the reference run's cache
    assert tried["pooling=mean"]["encoded_texts"] > 0 and code == 0
    # every suspect of a decoder is in the plan
    _, plan = explain(monkeypatch, capsys, no_eos, reference, "--dry-run")
    settings = {c["candidate"].split("=")[0] for c in plan["costs"]}
    assert settings == {"eos", "dtype", "max_length", "policy", "instructions", "pooling"}
    assert not plan["verdicts"]


def test_a_change_of_instructions_encodes_the_queries_only(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    sample_beir(SCIFACT, data / "scifact", queries=18, other_docs=80)
    e5 = (REPO_ROOT / "task_instructions" / "e5.yaml").read_text(encoding="utf-8")
    edited = tmp_path / "edited.yaml"
    edited.write_text(
        e5.replace("name: e5", "name: e5-edited").replace(
            'SciFact: "Given a scientific claim,', 'SciFact: "Given a claim,'
        ),
        encoding="utf-8",
    )
    args = ("run", *tiny_scifact_args(data, "--quiet"))
    run_here(monkeypatch, capsys, *args, "--output", str(tmp_path / "ref"))
    run_here(
        monkeypatch, capsys, *args, "--instructions", str(edited), "--output", str(tmp_path / "run")
    )
    corpus = len((data / "scifact" / "corpus.jsonl").read_text().splitlines())
    extra = ("--candidates", "instructions=e5", "--tolerance", "0")
    _, plan = explain(monkeypatch, capsys, tmp_path / "run", tmp_path / "ref", *extra, "--dry-run")
    (cost,) = plan["costs"]
    # planned from mteb's statistics of SciFact (the hub's 300 test queries, 5,183 documents;
    # a plan reads no data): the queries only
    assert (cost["texts"], cost["cached_texts"]) == (300, 5183)
    code, doc = explain(monkeypatch, capsys, tmp_path / "run", tmp_path / "ref", *extra)
    (verdict,) = doc["verdicts"]
    (tried,) = verdict["tried"]
    assert (tried["encoded_texts"], tried["cached_texts"]) == (18, corpus)  # done: the same
    assert tried["distance"] == 0.0 and verdict["explained_by"] == ["instructions=e5"]
    assert code == 0
