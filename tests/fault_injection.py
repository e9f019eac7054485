"""Fault injection for the fault tests: stop a process just before an atomic write's rename.

``stop_before_rename(monkeypatch, glob, action)`` makes ``linq_eval.atomic`` call ``action``
after a temporary file is written and fsynced, just before it is renamed over a target whose
name matches ``glob``; the default action SIGKILLs the process. Only ``linq_eval.atomic`` sees
the change (its ``os`` is replaced by a proxy), and only for the test that asks for it.

Run as a script, it does that in a ``linq-eval`` process, for tests that kill a real run:

    python tests/fault_injection.py 'STSBenchmark.json' run --random-init tiny ...
"""

from __future__ import annotations

import fnmatch
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def sigkill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class _OsWithFaultyRename:
    """``os`` as ``linq_eval.atomic`` uses it, with ``replace`` calling ``action`` first."""

    def __init__(self, glob: str, action: Callable[[], None]) -> None:
        self._glob = glob
        self._action = action

    def replace(self, src: Any, dst: Any) -> None:
        if fnmatch.fnmatch(Path(dst).name, self._glob):
            self._action()
        os.replace(src, dst)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def stop_before_rename(
    monkeypatch: pytest.MonkeyPatch, glob: str = "*", action: Callable[[], None] = sigkill
) -> None:
    """Call ``action`` before every atomic rename onto a target named like ``glob``."""
    from linq_eval import atomic

    monkeypatch.setattr(atomic, "os", _OsWithFaultyRename(glob, action))


def main(argv: list[str]) -> None:
    """``linq-eval ARGS...``, killed before the rename onto a target named like GLOB."""
    glob, *args = argv
    sys.path.insert(0, str(REPO))  # as ``python -m linq_eval.cli`` run from the checkout
    from linq_eval.cli import main as linq_eval_main

    with pytest.MonkeyPatch.context() as monkeypatch:
        stop_before_rename(monkeypatch, glob)
        sys.argv = ["linq-eval", *args]
        linq_eval_main()


if __name__ == "__main__":
    main(sys.argv[1:])
