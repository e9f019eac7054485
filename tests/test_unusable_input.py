"""Never a wrong answer: unusable input is exit 2 with one ``error:`` line, never exit 1 (the
regression code a CI gate reads) and never a silent change of a score."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from cli_helpers import run_cli
from conftest import STS_DATA, shared
from result_files import write_results
from test_compare import TASK_SETTINGS, write_run
from test_per_query import run_with_evidence

from linq_eval.results.reading import RUN_RECORD, load_results
from linq_eval.results.reproduction import deviations
from linq_eval.run.summary import TaskOutcome, format_texts

SCORES = {f"q{i}": 0.5 + i / 100 for i in range(20)}
LINQ = "Linq-AI-Research/Linq-Embed-Mistral"
MINILM_SETTINGS = {
    "model": "sentence-transformers/all-MiniLM-L6-v2",
    "profile": "all-minilm-l6-v2",
    "max_length": 256,
    "pooling": "mean",
    "policy": "none",
    "instructions": None,
    "eos": "none",
    "bos": "tokenizer",
    "padding_side": "right",
}


# ------------------------------------------------------------------ compare: damaged evidence


def _evidence_file(root: Path) -> Path:
    (path,) = root.glob("results/*/*/SciFact.queries.json.gz")
    return path


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:-20]), "not a complete gzip file"),
        (lambda p: p.write_bytes(b"plain text, not gzip"), "not a complete gzip file"),
        (lambda p: p.write_bytes(gzip.compress(b'{"other": "json"}')), "not linq-eval's"),
        (lambda p: p.write_bytes(gzip.compress(b"[1, 2]")), "not linq-eval's"),
    ],
    ids=["truncated", "not-gzip", "other-json", "a-list"],
)
def test_damaged_evidence_is_an_error_naming_the_file(tmp_path, monkeypatch, capsys, damage, said):
    ref = run_with_evidence(tmp_path / "ref", SCORES)
    lower = {q: s - 0.2 for q, s in SCORES.items()}
    run = run_with_evidence(tmp_path / "run", lower)  # a regression: exit 1 if read
    damage(_evidence_file(run))
    args = ("compare", str(run), "--reference", str(ref), "--tasks", "SciFact", "--per-query")
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2, out + err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert str(_evidence_file(run)) in err and said in err


def test_missing_evidence_is_a_note_naming_the_task(tmp_path, monkeypatch, capsys):
    ref = run_with_evidence(tmp_path / "ref", SCORES)
    run = run_with_evidence(tmp_path / "run", SCORES)
    _evidence_file(run).unlink()
    args = ("compare", str(run), "--reference", str(ref), "--tasks", "SciFact", "--per-query")
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, out + err
    assert "No per-query evidence for 1 compared task(s)" in out and "SciFact (run)" in out


# ------------------------------------------------------------------ compare: drift


def test_drift_is_checked_only_on_the_tasks_compared(tmp_path, monkeypatch, capsys):
    """A task added later with another max_length, which the reference lacks, decides
    nothing; compared, it is refused."""
    ref = write_run(tmp_path / "ref", {"SciFact": 0.7, "STS12": 0.7}, task_settings=TASK_SETTINGS)
    run = write_run(
        tmp_path / "run", {"SciFact": 0.7, "STS12": 0.7, "STS16": 0.8}, task_settings=TASK_SETTINGS
    )
    record_path = next(run.glob(f"results/*/*/{RUN_RECORD}"))
    record = json.loads(record_path.read_text())
    record["tasks"]["STS16"]["settings"]["max_length"] = 128
    record["settings"]["max_length"] = 128  # the folder's last run
    record_path.write_text(json.dumps(record))
    code, out, err = run_cli(monkeypatch, capsys, "compare", str(run), "--reference", str(ref))
    assert code == 0, out + err
    assert "PASS: 2 task(s)" in out
    shutil.copytree(run, tmp_path / "ref2")
    ref2 = next((tmp_path / "ref2").glob(f"results/*/*/{RUN_RECORD}"))
    record["tasks"]["STS16"]["settings"]["max_length"] = 512
    ref2.write_text(json.dumps(record))
    code, _, err = run_cli(
        monkeypatch, capsys, "compare", str(run), "--reference", str(tmp_path / "ref2")
    )
    assert code == 2 and "max_length: run 128 vs reference 512 (STS16)" in err


# ------------------------------------------------------------------ export: reproductions


def _minilm_folder(root: Path, entries: dict[str, dict]) -> Path:
    write_results(
        root, "sentence-transformers/all-MiniLM-L6-v2", "rev", dict.fromkeys(entries, 0.7)
    )
    (folder,) = root.glob("results/*/*")
    tasks = {
        name: {
            "data_source": e.get("data_source", "hub"),
            "dataset_revision": "abc",
            "settings": {**MINILM_SETTINGS, **e.get("settings", {})},
        }
        for name, e in entries.items()
    }
    (folder / RUN_RECORD).parent.mkdir(exist_ok=True)
    record = {"settings": MINILM_SETTINGS, "tasks": tasks}
    (folder / RUN_RECORD).write_text(json.dumps(record))
    return root


def test_a_reproduction_has_no_deviations_and_others_are_named(tmp_path):
    same = _minilm_folder(tmp_path / "same", {"STS12": {}, "STS13": {}})
    assert deviations(load_results(same)[0]) == {}
    local = _minilm_folder(tmp_path / "local", {"STS12": {"data_source": "local:/data"}})
    assert deviations(load_results(local)[0]) == {
        "STS12": {"data_source": "local:/data, not the hub dataset at revision abc"}
    }
    changed = _minilm_folder(
        tmp_path / "changed", {"STS12": {}, "STS13": {}, "STS16": {"settings": {"max_length": 128}}}
    )
    found = deviations(load_results(changed)[0])
    assert list(found) == ["STS16"]
    assert found["STS16"]["max_length"] == "128, profile all-minilm-l6-v2's is 256"
    assert "max_length 128" in found["STS16"]["mixed_settings"]  # a mixed folder too


# ------------------------------------------------------------------ local data files


MINILM_STS12 = ("--model", "all-minilm-l6-v2", "--tasks", "STS12")
"""all-MiniLM-L6-v2 on STS12, as command-line options."""
STS12 = STS_DATA / "STS12" / "test.jsonl"
"""A real STS file the tests below copy and damage."""


def _sts12_copy(tmp_path: Path, edit) -> Path:
    data = tmp_path / "data"
    (data / "STS12").mkdir(parents=True)
    lines = shared(STS12).read_text().splitlines(keepends=True)
    (data / "STS12" / "test.jsonl").write_text("".join(edit(lines)))
    return data


def _load(data: Path):
    import mteb

    from linq_eval.run.local_data import counting_skipped_lines, load_local_task

    task = mteb.get_task("STS12")
    with counting_skipped_lines() as skipped:
        load_local_task(task, data)
    return task, skipped


def test_a_blank_line_between_rows_is_an_error_with_file_and_line(tmp_path):
    from linq_eval.errors import DataError

    data = _sts12_copy(tmp_path, lambda lines: [*lines[:9], "\n", *lines[10:]])
    with pytest.raises(DataError, match=r"test.jsonl:10: blank line"):
        _load(data)


def test_blank_lines_after_the_last_row_are_skipped_and_counted(tmp_path):
    data = _sts12_copy(tmp_path, lambda lines: [*lines, "\n", "  \n"])
    task, skipped = _load(data)
    assert list(skipped.values()) == [2]
    rows = STS12.read_text().count("\n")
    assert len(task.dataset["test"]) == rows  # every pair kept


def test_a_duplicate_key_in_a_json_row_is_an_error(tmp_path):
    from linq_eval.errors import DataError

    def dup(lines: list[str]) -> list[str]:
        row = json.loads(lines[4])
        lines[4] = lines[4].rstrip().rstrip("}") + f', "score": {row["score"] + 1}}}\n'
        return lines

    data = _sts12_copy(tmp_path, dup)
    with pytest.raises(DataError, match=r"test.jsonl:5: duplicate key 'score'"):
        _load(data)


def test_bad_local_data_on_the_command_line_is_exit_2_with_one_error_line(
    tmp_path, monkeypatch, capsys
):
    """Also: --quiet prints no weight-loading bar, and no stray message about unloading."""
    data = _sts12_copy(tmp_path, lambda lines: [*lines[:9], "\n", *lines[10:]])
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "run",
        *MINILM_STS12,
        "--data-dir",
        str(data),
        "--output",
        str(tmp_path / "out"),
        "--quiet",
    )
    assert code == 2, out + err
    assert f"error: {data / 'STS12' / 'test.jsonl'}:10: blank line" in err
    assert "FAILED" not in out + err and "not loaded" not in out + err
    assert "Loading weights" not in out + err


# ------------------------------------------------------------------ options and output paths


def test_instructions_with_a_policy_that_gives_none_is_an_error(monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "plan", *MINILM_STS12, "--instructions", "e5")
    assert code == 2
    assert "--instructions e5 has no effect: policy 'none'" in err and "--policy e5" in err


def _not_a_folder(tmp_path: Path) -> Path:
    file = tmp_path / "a-file"
    file.write_text("x")
    return file / "sub"


def test_unwritable_run_output_is_refused_before_the_model_loads(tmp_path, monkeypatch, capsys):
    bad = _not_a_folder(tmp_path)
    code, out, err = run_cli(monkeypatch, capsys, "run", *MINILM_STS12, "--output", str(bad))
    assert code == 2 and err.startswith("error: ") and "Loading weights" not in out + err
    assert "is a file, not a folder" in err


def test_unwritable_table_and_export_outputs_are_errors(tmp_path, monkeypatch, capsys):
    run = write_run(tmp_path / "run", {"SciFact": 0.7})
    bad = _not_a_folder(tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, "table", str(run), "--output", str(bad / "t.md"))
    assert code == 2 and err.startswith("error: --output") and "not a folder" in err
    code, _, err = run_cli(monkeypatch, capsys, "export", str(run), "--to", str(bad))
    assert code == 2 and err.startswith("error: --to") and "not a folder" in err
    code, _, err = run_cli(monkeypatch, capsys, "export", str(run), "--to", str(bad.parent))
    assert code == 2 and "is a file, not a folder" in err
    # a missing folder is created, the table written atomically
    code, _, err = run_cli(
        monkeypatch, capsys, "table", str(run), "--output", str(tmp_path / "new" / "t.md")
    )
    assert code == 0, err
    assert (tmp_path / "new" / "t.md").read_text().startswith("| Model")


def test_a_folder_the_system_refuses_to_write_is_refused(tmp_path):
    """/proc takes no new files, for root too (permission bits do not stop root: the check
    writes a probe rather than reading them); a read-only folder, for any other user."""
    import os

    from linq_eval.writable import OutputPathError, require_writable_folder

    with pytest.raises(OutputPathError, match=r"--output /proc/linq-eval-out: cannot be written"):
        require_writable_folder("/proc/linq-eval-out", "--output")
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        try:
            with pytest.raises(OutputPathError, match="Permission denied"):
                require_writable_folder(folder / "out", "--output")
        finally:
            folder.chmod(0o755)


# ------------------------------------------------------------------ small output defects


def test_the_summary_counts_add_up():
    outcome = TaskOutcome(
        "T",
        "STS",
        "evaluated",
        "cosine_spearman",
        texts=2758,
        unique_texts=2593,
        encoded_texts=2552,
        cached_texts=41,
        edge_cases={"truncated": 12, "empty": 0},
    )
    assert format_texts(outcome) == (
        "2,758 texts (2,593 distinct: 2,552 encoded, 41 cached; 12 truncated)"
    )


def test_check_random_init_says_the_score_failure_is_expected(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("LINQ_EVAL_CACHE", str(tmp_path))
    code, out, _ = run_cli(monkeypatch, capsys, "check", "--random-init", "tiny", "--no-record")
    assert code == 0, out
    assert "FAIL (expected: random weights cannot give the card's scores" in out


def test_plan_of_another_model_has_no_linq_notes(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "plan", *MINILM_STS12)
    assert code == 0
    assert "# max_length 256\n" in out and "e5" not in out and "4096" not in out


def test_profiles_has_a_header(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "profiles")
    header, first = out.splitlines()[:2]
    assert code == 0 and header.split() == ["profile", "model@revision", "-", "description"]
    assert first.split()[:3] == ["linq-embed-mistral", f"{LINQ}@0c1a0b0589", "-"]
    assert first.index(f"{LINQ}@") == header.index("model@revision")  # the columns align
    code, _, err = run_cli(monkeypatch, capsys, "profiles", "--format", "xml")
    assert code == 2 and "Unknown --format 'xml'" in err


def test_unknown_task_of_a_benchmark_reads_as_english():
    from linq_eval.errors import UnknownNameError

    err = UnknownNameError("task of MTEB(eng, v1)", "Nope", [f"T{i}" for i in range(56)])
    assert "(56 known tasks of MTEB(eng, v1).)" in str(err)
