"""Running the ``linq-eval`` command line for tests: in-process, or in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``linq-eval ARGS`` in-process through cli.main (exit code 2 on user errors);
    returns (exit code, stdout, stderr)."""
    from linq_eval import cli

    monkeypatch.setattr(sys, "argv", ["linq-eval", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    out = capsys.readouterr()
    code = exc.value.code
    return (0 if code is None else int(code)), out.out, out.err


def run_compare(monkeypatch, capsys, run, reference, *args: str) -> tuple[int, str, str]:
    """``linq-eval compare RUN --reference REFERENCE ARGS`` in-process, as ``run_cli``."""
    return run_cli(monkeypatch, capsys, "compare", str(run), "--reference", str(reference), *args)


def run_here(monkeypatch, capsys, *args: str) -> str:
    """``linq-eval ARGS`` in-process (no interpreter start, no second import of torch and
    mteb) that must succeed; returns its stdout and stderr together, as ``run_ok`` does."""
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, (out + err)[-5000:]
    return out + err


REPO = Path(__file__).resolve().parents[1]


def cli_subprocess(*args: str, **kwargs) -> subprocess.Popen:
    """``linq-eval ARGS`` in a subprocess (offline), stdout and stderr together."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "linq_eval.cli", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def run_ok(*args: str, timeout: float = 3600) -> str:
    """``linq-eval ARGS`` in a subprocess that must succeed; returns its output."""
    proc = cli_subprocess(*args)
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-5000:]
    return out
