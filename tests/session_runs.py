"""The test session's real runs, made in the background while other tests run.

Each real run the suite shares (conftest's ``RUNS``: all-MiniLM-L6-v2 on the STS, the "more"
and the three main tasks, the tiny Mistral on STSBenchmark) is one ``linq-eval run`` in a
subprocess. The session starts those its selected tests need as soon as its first test starts,
one after another in a background thread, while the tests that need none run on the other core;
``conftest.pytest_collection_modifyitems`` puts the tests that need a run after those that need
none, in the order the runs are made. A fixture that needs a run waits for it. Each run is made
once per session, whichever test asks first.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from cli_helpers import cli_subprocess


@dataclass(frozen=True)
class Made:
    """One finished run: its output folder, what it printed, its wall seconds."""

    output: Path
    stdout: str
    seconds: float


class SessionRuns:
    """Runs ``linq-eval run ARGS --output FOLDER`` for each named run, in the given order, in
    one background thread; ``result(name)`` waits for one (and fails with its output when it
    failed)."""

    def __init__(self, runs: Mapping[str, tuple[Sequence[str], Path]]):
        self._runs = dict(runs)
        self._futures: dict[str, Future[Made]] = {name: Future() for name in self._runs}
        self._stop = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._make_all, name="session-runs", daemon=True)

    def start(self) -> SessionRuns:
        self._thread.start()
        return self

    def result(self, name: str) -> Made:
        return self._futures[name].result()

    def stop(self) -> None:
        """Stop the run in progress and those not started (the session is ending)."""
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        self._thread.join(timeout=60)

    def _make_all(self) -> None:
        for name, (args, output) in self._runs.items():
            future = self._futures[name]
            if self._stop.is_set():
                future.set_exception(RuntimeError(f"the session ended before run {name!r}"))
                continue
            try:
                future.set_result(self._make(name, args, output))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for it
                future.set_exception(exc)

    def _make(self, name: str, args: Sequence[str], output: Path) -> Made:
        t0 = time.perf_counter()
        self._proc = cli_subprocess("run", *args, "--output", str(output))
        stdout, _ = self._proc.communicate()
        seconds = time.perf_counter() - t0
        if self._proc.returncode != 0:
            raise AssertionError(
                f"session run {name!r} exited {self._proc.returncode}:\n{stdout[-5000:]}"
            )
        return Made(output, stdout, seconds)


def needed(runs: Iterable[str], fixture_names: Iterable[Iterable[str]]) -> list[str]:
    """The runs (in their order) that some test's fixtures include."""
    used = {name for names in fixture_names for name in names}
    return [name for name in runs if name in used]


def order_key(runs: Sequence[str], fixture_names: Iterable[str]) -> int:
    """Where a test goes: 0 when it needs no run, else 1 + the position of the last run it
    needs (so it starts once its runs are made)."""
    names = set(fixture_names)
    return max((i + 1 for i, run in enumerate(runs) if run in names), default=0)
