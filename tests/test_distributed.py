"""Data-parallel encoding: two CPU processes (gloo) give exactly the results of one.

``linq-eval run --devices cpu cpu`` starts torchrun with two processes on CPU; the tiny random
Mistral (with Mistral's real tokenizer) encodes STSBenchmark in chunks of 256 texts, so that
both ranks embed chunks and the last round leaves one rank idle.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_cli
from conftest import TIMING_FIELDS, TINY_ARGS, TINY_FOLDER, TINY_TASK

from linq_eval.errors import ConfigError
from linq_eval.paths import CACHE_SUBDIR
from linq_eval.results.reading import RUN_RECORD
from linq_eval.run import distributed

REPO = Path(__file__).resolve().parents[1]


def python(*args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """``python ARGS`` from the checkout, offline, with ``env`` added and outside any
    torchrun group (no RANK, WORLD_SIZE ... inherited); its output captured."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **env}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_parse_devices(monkeypatch):
    monkeypatch.setattr(distributed, "visible_gpu_count", lambda: 4)
    assert distributed.parse_devices(["0", "cuda:3"]) == ("cuda", ["0", "3"])
    assert distributed.parse_devices(["cpu", "cpu"]) == ("cpu", ["cpu", "cpu"])
    for bad, message in (
        (["0", "cpu"], "mixes"),
        (["1", "1"], "repeats"),
        (["gpu0"], "Bad device"),
        ([], "at least one"),
    ):
        with pytest.raises(ConfigError, match=message):
            distributed.parse_devices(bad)


def test_torchrun_command_and_argument_stripping(monkeypatch):
    monkeypatch.setattr(distributed, "visible_gpu_count", lambda: 8)
    args = distributed.strip_option(
        ["--tasks", "A", "B", "--devices", "0", "1", "--output", "x", "--devices=2"], "--devices"
    )
    assert args == ["--tasks", "A", "B", "--output", "x"]
    cmd, env = distributed.torchrun_command(["2", "5"], ["run", *args])
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    assert cmd[5:8] == ["-m", "linq_eval.cli", "run"]
    assert env["CUDA_VISIBLE_DEVICES"] == "2,5"
    cmd, env = distributed.torchrun_command(["cpu", "cpu"], ["run"])
    assert cmd[-2:] == ["--device", "cpu"] and env["CUDA_VISIBLE_DEVICES"] == ""


def test_named_gpus_must_be_visible(monkeypatch, capsys):
    monkeypatch.setattr(distributed, "visible_gpu_count", lambda: 2)
    with pytest.raises(ConfigError, match=r"names GPU 2, but only 2 GPU\(s\) are visible.*: 0 1\."):
        distributed.parse_devices(["0", "2"])
    with pytest.raises(ConfigError, match=r"names GPU 2, 3, but only 2"):
        distributed.parse_devices(["0", "1", "2", "3"])
    assert distributed.parse_devices(["1", "0"]) == ("cuda", ["1", "0"])
    monkeypatch.setattr(distributed, "visible_gpu_count", lambda: 0)
    assert distributed.parse_devices(["cpu", "cpu"]) == ("cpu", ["cpu", "cpu"])
    monkeypatch.setattr(distributed, "launch", lambda *a: pytest.fail("launched without GPUs"))
    code, _, err = run_cli(monkeypatch, capsys, "run", *TINY_TASK, "--devices", "0", "1")
    assert code == 2 and "no CUDA GPU is visible" in err and "--devices cpu cpu" in err


def test_gpus_asked_for_without_cuda_is_an_error_not_two_cpu_processes(tmp_path):
    args = ("-m", "linq_eval.cli", "run", *TINY_TASK, "--devices", "0", "1")
    # no GPU visible to torch, on any machine
    proc = python(*args, "--output", str(tmp_path), CUDA_VISIBLE_DEVICES="")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error: --devices 0 1 names GPUs, but no CUDA GPU is visible here" in proc.stderr
    assert "CUDA_VISIBLE_DEVICES=''" in proc.stderr and "launching" not in proc.stderr
    assert not list(tmp_path.iterdir())


def test_single_process_has_no_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.init_from_env() is None
    assert distributed.current() is None
    assert distributed.broadcast_object({"a": 1}, None) == {"a": 1}


def run(*args: str) -> str:
    proc = python("-m", "linq_eval.cli", "run", *args, timeout=1800)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return proc.stdout


@pytest.mark.slow
def test_two_cpu_processes_equal_one(tiny_run, tmp_path):
    i = TINY_ARGS.index("--device")
    two_processes = (*TINY_ARGS[:i], *TINY_ARGS[i + 2 :], "--devices", "cpu", "cpu")
    out = run(*two_processes, "--output", str(tmp_path / "two"))
    assert out.count("[1/1] STSBenchmark") == 1  # only rank 0 reports
    one = json.loads((tiny_run[0] / TINY_FOLDER / "STSBenchmark.json").read_text())
    two = json.loads((tmp_path / "two" / TINY_FOLDER / "STSBenchmark.json").read_text())
    assert {k: v for k, v in two.items() if k not in TIMING_FIELDS} == {
        k: v for k, v in one.items() if k not in TIMING_FIELDS
    }
    record = json.loads((tmp_path / "two" / TINY_FOLDER / RUN_RECORD).read_text())
    entry = record["tasks"]["STSBenchmark"]
    assert entry["processes"] == 2
    assert entry["encoded_texts"] + entry["cached_texts"] == 2593  # every text, counted once
    assert record["settings"]["device"] == "cpu x 2"
    chunks = list((tmp_path / "two" / CACHE_SUBDIR).glob("*/chunks/*.json"))
    assert len(chunks) == 11  # 5 + 6 chunks of 256 (sentence1, sentence2), written by rank 0


RANKS_SCRIPT = """
import socket, sys
import torch.multiprocessing as mp


def worker(rank, port, out):
    import os
    lines = []
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE="2")
    from linq_eval.errors import LockHeldError
    from linq_eval.errors import ConfigError
    from linq_eval.run import distributed

    group = distributed.init_from_env("cpu", timeout_s=120)
    calls = []

    def value():
        calls.append(rank)
        return {"done": ["A"]}

    def config_error():
        calls.append(rank)
        raise ConfigError("rank 0 found a user error")

    def lock_held():
        raise LockHeldError("rank 0 found the lock held")

    lines.append(f"rank {rank} value {distributed.on_main(group, value)}")
    for fn in (config_error, lock_held):
        try:
            distributed.on_main(group, fn)
            lines.append(f"rank {rank} no error")
        except Exception as exc:
            lines.append(f"rank {rank} {type(exc).__name__}: {exc}")
    lines.append(f"rank {rank} ran fn {len(calls)} times")
    distributed.shutdown()
    # one file per rank: two processes printing to one pipe can interleave their lines
    with open(os.path.join(out, f"rank{rank}.txt"), "w") as f:
        f.write("\\n".join(lines) + "\\n")


if __name__ == "__main__":
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(worker, args=(port, sys.argv[1]), nprocs=2)
"""


def test_an_error_on_rank_0_reaches_every_rank(tmp_path):
    """Work done on rank 0 only (claiming tasks, writing the record): its result, or the user
    error it raised, is what every rank of a real two-process gloo group gets."""
    script = tmp_path / "ranks.py"
    script.write_text(RANKS_SCRIPT)
    proc = python(str(script), str(tmp_path))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    lines = {
        line for rank in (0, 1) for line in (tmp_path / f"rank{rank}.txt").read_text().splitlines()
    }
    for rank in (0, 1):
        assert f"rank {rank} value {{'done': ['A']}}" in lines
        assert f"rank {rank} ConfigError: rank 0 found a user error" in lines
        assert f"rank {rank} LockHeldError: rank 0 found the lock held" in lines
    assert "rank 0 ran fn 2 times" in lines and "rank 1 ran fn 0 times" in lines
