"""Evidence bound to its result, the data a result was made from, and what export submits:
the gate never reads one result's evidence for another, and says so (exit 2) when asked to.

Real runs of the tiny random Mistral on a sample of the real SciFact (18 queries, their
judged documents and 80 others), through the command line in this process.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import REPO, run_cli, run_compare, run_here, run_ok
from conftest import SHARED_DATA, TINY_FOLDER, tiny_scifact_args
from data_helpers import sample_beir
from result_files import write_results

from linq_eval.results.per_query import read_bound_evidence
from linq_eval.results.reading import ResultSet, load_results, read_run_record
from linq_eval.results.reproduction import deviations

EVIDENCE = "SciFact.queries.json.gz"


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """A data folder holding a SciFact sample (``scifact/``)."""
    root = tmp_path_factory.mktemp("data")
    sample_beir(SHARED_DATA / "scifact", root / "scifact", queries=18, other_docs=80)
    return root


def tiny_args(data: Path, output: Path, *extra: str) -> tuple[str, ...]:
    return (
        "run",
        *tiny_scifact_args(data, "--no-progress"),
        "--output",
        str(output),
        *extra,
    )


@pytest.fixture(scope="module")
def first(sample, tmp_path_factory) -> Path:
    """One run with evidence: its output folder."""
    out = tmp_path_factory.mktemp("first") / "results"
    run_ok(*tiny_args(sample, out))
    return out


def compare(monkeypatch, capsys, run: Path, reference: Path, *extra: str):
    return run_compare(
        monkeypatch, capsys, run, reference, "--tasks", "SciFact", "--per-query", *extra
    )


def copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def rewrite_evidence(path: Path, change) -> None:
    data = json.loads(gzip.decompress(path.read_bytes()))
    change(data)
    path.write_bytes(gzip.compress(json.dumps(data).encode()))


def test_evidence_names_the_result_it_explains(first, sample):
    folder = first / TINY_FOLDER
    record = read_run_record(folder)
    settings = record["tasks"]["SciFact"]["settings"]
    ev = read_bound_evidence(folder, "SciFact", settings)
    result = json.loads((folder / "SciFact.json").read_text())
    binding = ev.binding
    assert binding.result_file == "SciFact.json" and binding.queries == 18
    assert binding.main_score == pytest.approx(result["scores"]["test"][0]["main_score"])
    assert settings["data_hash"].startswith("sha256:")
    assert record["tasks"]["SciFact"]["data_source"] == str((sample / "scifact").resolve())


def test_a_rerun_without_evidence_removes_the_old_and_stale_evidence_is_refused(
    first, sample, tmp_path, monkeypatch, capsys
):
    """The reported case: a task rerun with other settings and --no-per-query kept the old
    evidence, and a significance gate read it for the new result and passed a drop."""
    rerun = copy(first, tmp_path / "rerun")
    extra = ("--max-length", "48", "--allow-settings-change", "--no-per-query", "--quiet")
    run_here(monkeypatch, capsys, *tiny_args(sample, rerun, *extra))
    assert not (rerun / TINY_FOLDER / EVIDENCE).exists()  # removed with the old result
    gate = ("--require-significant", "--allow-drift")
    code, out, err = compare(monkeypatch, capsys, rerun, first, *gate)
    assert code in (0, 1) and "No per-query evidence for 1 compared task(s)" in out, out + err
    assert "SciFact (run)" in out and "gated on the tolerance alone" in out
    # the old evidence put back beside the new result: refused, naming the file and why
    shutil.copy(first / TINY_FOLDER / EVIDENCE, rerun / TINY_FOLDER / EVIDENCE)
    code, out, err = compare(monkeypatch, capsys, rerun, first, *gate)
    assert code == 2, out + err
    assert f"{EVIDENCE}: does not explain SciFact.json: the result file has changed" in err
    # run again with evidence on: the unexplained result is evaluated again, with evidence
    run_here(monkeypatch, capsys, *tiny_args(sample, rerun, "--max-length", "48", "--quiet"))
    code, out, err = compare(monkeypatch, capsys, rerun, first, *gate)
    assert code in (0, 1) and "per query: SciFact" in out or "PASS" in out, out + err
    assert read_bound_evidence(rerun / TINY_FOLDER, "SciFact", None) is not None


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda d: [q.update(score=0.0) for q in d["parts"][0]["queries"].values()], "mean"),
        (
            lambda d: d["parts"][0].update(
                queries=dict(list(d["parts"][0]["queries"].items())[:9])
            ),
            "9 queries, but its result was computed over 18",
        ),
        (lambda d: d["binding"].update(settings_hash="0" * 16), "other score-deciding settings"),
        (lambda d: d.update(format=1), "written before evidence was bound"),
    ],
    ids=["scores zeroed", "half the queries", "other settings", "unbound"],
)
def test_evidence_that_does_not_explain_its_result_is_refused(
    first, tmp_path, monkeypatch, capsys, change, said
):
    edited = copy(first, tmp_path / "edited")
    rewrite_evidence(edited / TINY_FOLDER / EVIDENCE, change)
    code, out, err = compare(monkeypatch, capsys, edited, first)
    assert code == 2 and said in err and EVIDENCE in err, out + err
    assert err.count("\n") == 1  # one line


def test_a_run_on_other_data_is_drift_named_as_such(first, sample, tmp_path, monkeypatch, capsys):
    same = shutil.copytree(sample, tmp_path / "same-data")  # the same bytes, elsewhere
    other = shutil.copytree(sample, tmp_path / "other-data")
    corpus = other / "scifact" / "corpus.jsonl"
    lines = corpus.read_text(encoding="utf-8").splitlines()
    doc = json.loads(lines[-1])
    lines[-1] = json.dumps({**doc, "text": doc["text"] + " Changed."})
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for data, name in ((same, "same"), (other, "other")):
        run_here(monkeypatch, capsys, *tiny_args(data, tmp_path / name, "--quiet"))
    code, out, err = compare(monkeypatch, capsys, tmp_path / "same", first)
    assert code == 0 and "data_hash" not in out and "PASS" in out, out + err
    code, out, err = compare(monkeypatch, capsys, tmp_path / "other", first)
    assert code == 2 and "the data read (data_hash): run 'sha256:" in err, out + err
    code, out, _ = compare(monkeypatch, capsys, tmp_path / "other", first, "--allow-drift")
    assert "settings drift (allowed): the data read (data_hash)" in out
    source = read_run_record(tmp_path / "other" / TINY_FOLDER)["tasks"]["SciFact"]["data_source"]
    assert source == str((other / "scifact").resolve())


def test_a_kill_between_result_and_evidence_is_run_again(first, sample, tmp_path):
    """SIGKILL before the evidence lands (the new result is in place): the folder holds a
    result without evidence, never a mismatched pair, and the rerun completes both."""
    out = tmp_path / "killed"
    args = ["--quiet", *tiny_args(sample, out)[1:]]
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "fault_injection.py"), EVIDENCE, "run", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == -9, proc.stdout[-2000:] + proc.stderr[-2000:]
    folder = out / TINY_FOLDER
    assert (folder / "SciFact.json").exists() and not (folder / EVIDENCE).exists()
    done = subprocess.run(
        [sys.executable, "-m", "linq_eval.cli", "run", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "[1/1] SciFact" in done.stdout and "done earlier" not in done.stdout
    mine = read_bound_evidence(folder, "SciFact", None)
    theirs = read_bound_evidence(first / TINY_FOLDER, "SciFact", None)
    assert mine.as_dict()["parts"] == theirs.as_dict()["parts"]


def test_export_refuses_random_weights_even_forced(first, tmp_path, monkeypatch, capsys):
    for extra in ((), ("--force",)):
        code, out, err = run_cli(
            monkeypatch, capsys, "export", str(first), "--to", str(tmp_path / "s"), *extra
        )
        assert code == 2 and "Randomly initialised weights are not a model" in err, out + err


def test_every_score_setting_other_than_the_profiles_is_a_deviation(tmp_path):
    settings = {
        "profile": "all-minilm-l6-v2",
        "device": "cuda:0",
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "dtype": "float16",
        "max_length": 256,
        "pooling": "mean",
        "eos": "none",
        "bos": "tokenizer",
        "padding_side": "right",
        "policy": "none",
        "instructions": None,
        "template": "",
    }
    folder = write_results(tmp_path, "sentence-transformers/all-MiniLM-L6-v2", "r", {"STS12": 0.7})
    record = {
        "settings": settings,
        "tasks": {
            "STS12": {
                "settings": {**settings, "data_hash": "sha256:ab"},
                "data_source": "/data/sts12",
            }
        },
    }
    (rs,) = load_results(folder)
    found = deviations(ResultSet(rs.model, rs.revision, folder, "run", rs.task_files, record))
    assert found["STS12"]["dtype"] == "'float16', profile all-minilm-l6-v2's is 'float32'"
    assert found["STS12"]["data_source"].startswith("/data/sts12 (sha256:ab), not the hub")
    assert set(found["STS12"]) == {"dtype", "data_source"}
    for key, value in (("pooling", "last"), ("max_length", 128), ("template", "x")):
        record["tasks"]["STS12"]["settings"] = {**settings, key: value}
        rs2 = ResultSet(rs.model, rs.revision, folder, "run", rs.task_files, record)
        assert key in deviations(rs2)["STS12"], key
