"""Faults lose nothing: a full disk, SIGKILL at several points of a run, two runs at once.

Real runs use the tiny random Mistral on STSBenchmark (``linq-eval run`` in subprocesses for
the kills). Kills during a write run ``linq-eval`` through ``tests/fault_injection.py``, which
monkeypatches ``linq_eval.atomic`` in that process to SIGKILL it after the temporary file is
written and fsynced, just before it is renamed over a target whose name matches a glob.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli, run_here
from conftest import TIMING_FIELDS, TINY_FOLDER
from conftest import TINY_ARGS as TINY_RUN_ARGS
from fault_injection import stop_before_rename

from linq_eval import atomic
from linq_eval.atomic import TMP_MARK, FileLock
from linq_eval.errors import DiskFullError
from linq_eval.paths import CACHE_SUBDIR
from linq_eval.results.reading import RUN_RECORD, read_run_record
from linq_eval.run.atomic_results import AtomicResultCache
from linq_eval.run.cache import EmbeddingCache, round_to_storage

REPO = Path(__file__).resolve().parents[1]
TINY_ARGS = ("run", *TINY_RUN_ARGS)


def cli(out: Path, kill_before_rename: str | None = None) -> subprocess.Popen:
    """``linq-eval run`` of the tiny model; killed before renaming onto a target named like
    ``kill_before_rename`` when given (``tests/fault_injection.py``)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = ["-m", "linq_eval.cli"]
    if kill_before_rename:
        command = [str(Path(__file__).with_name("fault_injection.py")), kill_before_rename]
    return subprocess.Popen(
        [sys.executable, *command, *TINY_ARGS, "--output", str(out)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def temporaries(root: Path) -> list[Path]:
    return list(root.rglob(f"*{TMP_MARK}*")) + [
        p for p in (root / ".linq_eval" / "scratch").glob("*") if p.is_dir()
    ]


def task_scores(folder: Path) -> dict:
    data = json.loads((folder / "STSBenchmark.json").read_text())
    return {k: v for k, v in data.items() if k not in TIMING_FIELDS}


@pytest.fixture(scope="module")
def uninterrupted(tiny_run) -> Path:
    """The output folder of the shared uninterrupted run of TINY_ARGS (conftest)."""
    return tiny_run[0]


def _stamp(path: Path) -> tuple[int, int] | None:
    """Which version of ``path`` is in place (an atomic write puts a new file there)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _kill_when(proc: subprocess.Popen, ready) -> None:
    """SIGKILL ``proc``'s process group once ``ready()`` holds (or once it has ended)."""
    while not ready() and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)


class _FullDiskFile:
    """A writable file that takes half of the first write, then fails with ENOSPC."""

    def __init__(self, f):
        self._f = f

    def write(self, data):
        self._f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def _disk_full_open(real_open, when):
    def fake(path, *args, **kwargs):
        f = real_open(path, *args, **kwargs)
        return _FullDiskFile(f) if when(Path(path)) else f

    return fake


# --------------------------------------------------------------------------- disk full


def test_disk_full_writing_the_run_record_keeps_it(uninterrupted, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    shutil.copytree(uninterrupted, out)
    record = out / TINY_FOLDER / RUN_RECORD
    before = record.read_bytes()
    monkeypatch.setattr(
        atomic,
        "open",
        _disk_full_open(open, lambda p: p.name.startswith(f".{Path(RUN_RECORD).name}")),
        raising=False,
    )
    code, _, err = run_cli(monkeypatch, capsys, *TINY_ARGS, "--output", str(out))
    assert code == 2
    assert f"The disk is full: could not write {record}" in err
    assert "previous content" in err and "Traceback" not in err
    assert record.read_bytes() == before
    assert not temporaries(out)


@pytest.mark.parametrize("where", ["mteb-write", "fsync"])
def test_disk_full_writing_a_task_result_keeps_the_old_one(
    uninterrupted, tmp_path, monkeypatch, where
):
    out = tmp_path / "out"
    shutil.copytree(uninterrupted, out)
    folder = out / TINY_FOLDER
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    result = AtomicResultCache(out).load_task_result(
        "STSBenchmark", "linq-eval/random-mistral-tiny", "seed-0"
    )
    result.evaluation_time = 123.0  # different content, so a write would show
    if where == "mteb-write":  # mteb's plain writes into the scratch folder
        real = Path.open

        def fake(self, *args, **kwargs):
            f = real(self, *args, **kwargs)
            return _FullDiskFile(f) if "scratch" in self.parts and "w" in args[0] else f

        monkeypatch.setattr(Path, "open", fake)
    else:  # the flush to disk before the rename fails, as on file systems with late allocation

        def fsync(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "fsync", fsync)
    cache = AtomicResultCache(out, lock=FileLock(tmp_path / "record.lock"))
    with pytest.raises(DiskFullError, match="The disk is full: could not write") as err:
        cache.save_to_cache(result, "linq-eval/random-mistral-tiny", "seed-0")
    assert str(folder / "STSBenchmark.json") in str(err.value)
    monkeypatch.undo()
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    assert not temporaries(out)


def test_disk_full_writing_a_cache_chunk_keeps_the_cache(tmp_path, monkeypatch):
    identity = {"model": "org/model", "revision": "abc", "dtype": "float32", "max_length": 64}
    cache = EmbeddingCache(tmp_path, identity)
    rng = np.random.default_rng(0)
    old_keys = cache.keys([f"old {i}" for i in range(5)])
    old, _ = round_to_storage(rng.standard_normal((5, 8)).astype(np.float32), cache.precision)
    cache.put(old_keys, old)
    files = {p: p.read_bytes() for p in cache.chunk_dir.iterdir()}

    new_keys = cache.keys([f"new {i}" for i in range(5)])
    new, _ = round_to_storage(rng.standard_normal((5, 8)).astype(np.float32), cache.precision)
    for victim in (".vec.npy", ".keys.npy", ".json"):  # each file of a chunk in turn
        monkeypatch.setattr(
            atomic,
            "open",
            _disk_full_open(open, lambda p, v=victim: p.name.split(TMP_MARK)[0].endswith(v)),
            raising=False,
        )
        with pytest.raises(DiskFullError, match="The disk is full: could not write") as err:
            cache.put(new_keys, new)
        assert str(cache.chunk_dir) in str(err.value)
        monkeypatch.undo()
        assert not temporaries(tmp_path)
        for path, data in files.items():
            assert path.read_bytes() == data
        reopened = EmbeddingCache(tmp_path, identity)
        found, vectors = reopened.lookup(np.concatenate([old_keys, new_keys]))
        assert found.tolist() == [True] * 5 + [False] * 5  # the half-written chunk is not used
        np.testing.assert_array_equal(vectors, old.astype(np.float32))
    cache.put(new_keys, new)  # space again: it is written
    assert EmbeddingCache(tmp_path, identity).lookup(new_keys)[0].all()


# --------------------------------------------------------------------------- SIGKILL


def test_sigkill_at_any_point_then_a_rerun_equals_an_uninterrupted_run(
    uninterrupted, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "out"
    chunks = out / CACHE_SUBDIR
    record = out / TINY_FOLDER / RUN_RECORD
    kills = [
        (Path(RUN_RECORD).name, None),  # the record written before any work
        (None, "chunks"),  # mid-encoding, once 3 chunks are stored
        ("*.vec.npy", None),  # a cache chunk write
        ("STSBenchmark.json", None),  # the task result write
        # mid-task from the cache, once this run has updated the record after loading its
        # model (may finish first: only cached work is left)
        (None, "record"),
    ]
    for fault, when in kills:
        before = _stamp(record)
        proc = cli(out, fault)
        if when == "chunks":
            _kill_when(proc, lambda: len(list(chunks.glob("*/chunks/*.json"))) >= 3)
        elif when == "record":
            _kill_when(proc, lambda: _stamp(record) != before)  # noqa: B023 - called at once
        try:
            stdout, _ = proc.communicate(timeout=600)  # a guard against a hang only
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"the run ({fault}, {when}) hung: {proc.communicate()[0][-3000:]}")
        if when != "record":
            assert proc.returncode == -signal.SIGKILL, (fault, when, stdout[-3000:])
            assert not (out / TINY_FOLDER / "STSBenchmark.json").exists()
        else:
            assert proc.returncode in (-signal.SIGKILL, 0), stdout[-3000:]
        if fault:
            assert temporaries(out)  # killed before the rename: its temporary is left
        for path in out.rglob("*.json"):  # whatever is in place is whole
            if TMP_MARK not in path.name:
                json.loads(path.read_text())

    stdout = run_here(monkeypatch, capsys, *TINY_ARGS, "--output", str(out))  # in-process
    assert "[1/1] STSBenchmark" in stdout
    a, b = uninterrupted / TINY_FOLDER, out / TINY_FOLDER
    assert task_scores(b) == task_scores(a)
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    assert (a / "model_meta.json").read_bytes() == (b / "model_meta.json").read_bytes()
    assert (a / "run_settings.jsonl").read_bytes() == (b / "run_settings.jsonl").read_bytes()
    ra, rb = read_run_record(a), read_run_record(b)
    assert ra["settings"] == rb["settings"]
    assert rb["tasks"]["STSBenchmark"]["main_score"] == ra["tasks"]["STSBenchmark"]["main_score"]
    assert not temporaries(out)  # stale temporaries of the killed runs are cleaned up


def test_stale_temporaries_of_live_or_foreign_processes_are_kept(tmp_path):
    import socket

    host = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    names = {
        f".a.json{TMP_MARK}{host}-{dead.pid}-abcd1234": False,  # dead here: removed
        f".b.json{TMP_MARK}{host}-{os.getpid()}-abcd1234": True,  # this process
        f".c.json{TMP_MARK}{host}-1-abcd1234": True,  # alive (init)
        f".d.json{TMP_MARK}other-host-{dead.pid}-abcd1234": True,  # another host's
    }
    for name in names:
        (tmp_path / name).write_text("x")
    atomic.remove_stale_temporaries(tmp_path)
    assert {n: (tmp_path / n).exists() for n in names} == names


class _Stopped(Exception):
    pass


def _stop() -> None:
    raise _Stopped


def test_a_write_stopped_before_its_rename_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "record.json"
    atomic.atomic_write_json(target, {"v": 1})
    stop_before_rename(monkeypatch, "other.json", _stop)
    atomic.atomic_write_json(target, {"v": 2})  # another name: written as usual
    assert json.loads(target.read_text()) == {"v": 2}
    stop_before_rename(monkeypatch, "record.json", _stop)
    with pytest.raises(_Stopped):
        atomic.atomic_write_json(target, {"v": 3})
    assert json.loads(target.read_text()) == {"v": 2}
    assert not temporaries(tmp_path)  # an exception (unlike a kill) removes the temporary


# --------------------------------------------------------------------------- two runs at once
# A second ``linq-eval run`` on tasks another run holds: tests/test_runner.py::
# test_a_second_run_on_the_same_tasks_is_refused (exit 2, the holder named). The run record's
# own lock, shared by shards writing one folder, only serialises its updates.
