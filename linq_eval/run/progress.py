"""One progress line for a whole suite (README.md, "Progress"): redrawn in place in a terminal,
plain lines in a log file (at each task's start and end, at most once per ``interval_s`` in
between); ``quiet`` prints nothing. Example::

    progress = SuiteProgress([("SciFact", 1_250_000), ("STS12", 90_000)], stream=sys.stderr)
    with progress.watch(lambda: encoder.stats.tokens):
        progress.start("SciFact"); ...; progress.finish("SciFact")
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO

import datasets

from linq_eval.run.plan import duration, human


def shows_bars(wanted: bool) -> bool:
    """Whether per-call progress bars (ours, mteb's, datasets') are drawn: only when wanted
    and stderr is a terminal; in a log file the suite's plain lines stand for them."""
    return wanted and sys.stderr.isatty()


@contextlib.contextmanager
def library_bars(enabled: bool) -> Iterator[None]:
    """Switch the datasets and transformers libraries' progress bars (loading data, loading
    weights) off while the block runs (unless ``enabled``), then back to what they were."""
    from transformers import logging as hf_logging

    was = datasets.is_progress_bar_enabled(), hf_logging.is_progress_bar_enabled()
    if not enabled:
        datasets.disable_progress_bars()
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was[0] and not enabled:
            datasets.enable_progress_bars()
        if was[1] and not enabled:
            hf_logging.enable_progress_bar()


class SuiteProgress:
    """Progress of a suite of tasks with estimated token counts."""

    def __init__(
        self,
        tasks: Sequence[tuple[str, int]],
        *,
        stream: IO[str] | None = None,
        quiet: bool = False,
        tty: bool | None = None,
        interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.estimates = {name: max(0, int(tokens)) for name, tokens in tasks}
        self.total_tokens = sum(self.estimates.values())
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval_s = interval_s if not self.tty else min(interval_s, 0.5)
        self.clock = clock
        self.started = clock()
        self.finished: list[str] = []
        self.current: str | None = None
        self.current_tokens = 0
        self.encoded_tokens = 0
        self._base_encoded = 0
        self.skipped_tokens = 0
        """Estimated tokens of tasks done before this run started (no time spent on them)."""
        self._last_print = float("-inf")
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- state
    def start(self, name: str) -> None:
        with self._lock:
            self.current, self.current_tokens = name, 0
            self._base_encoded = self.encoded_tokens
        self._emit(force=True)

    def finish(self, name: str, status: str = "done") -> None:
        with self._lock:
            if name not in self.finished:
                self.finished.append(name)
            if self.current == name:
                self.current, self.current_tokens = None, 0
        self._emit(force=True, note=f"{name} {status}")

    def skip(self, name: str) -> None:
        """A task that needs no work (done earlier): counts as done, takes no time."""
        with self._lock:
            self.skipped_tokens += self.estimates.get(name, 0)
        self.finish(name, "done earlier")

    def encoded(self, tokens_so_far: int) -> None:
        """The encoder's running token counter (monotonic over the whole run)."""
        with self._lock:
            self.encoded_tokens = tokens_so_far
            self.current_tokens = max(0, tokens_so_far - self._base_encoded)
        self._emit()

    # ---------------------------------------------------------------- numbers
    def done_tokens(self) -> int:
        """Estimated tokens of finished tasks plus the current task's share (capped)."""
        done = sum(self.estimates.get(n, 0) for n in self.finished)
        if self.current is not None:
            done += min(self.current_tokens, self.estimates.get(self.current, 0))
        return done

    def line(self) -> str:
        took = self.clock() - self.started
        elapsed, done = max(took, 1e-9), self.done_tokens()
        worked = done - self.skipped_tokens  # estimated tokens this run has spent time on
        eta = (self.total_tokens - done) * took / worked if worked > 0 and took > 0 else None
        parts = [
            f"[{len(self.finished)}/{len(self.estimates)} tasks]",
            f"{human(done)}/{human(self.total_tokens)} tokens",
            f"{human(self.encoded_tokens / elapsed)} tok/s",
            f"ETA {duration(eta) if eta is not None else '?'}",
            f"elapsed {duration(elapsed)}",
        ]
        if self.current is not None:
            est = self.estimates.get(self.current, 0)
            share = f" {min(100, 100 * self.current_tokens // est)}%" if est else ""
            parts.append(f"| {self.current}{share}")
        return "  ".join(parts)

    # ---------------------------------------------------------------- output
    def _emit(self, *, force: bool = False, note: str | None = None) -> None:
        if self.quiet:
            return
        now = self.clock()
        if not force and now - self._last_print < self.interval_s:
            return
        self._last_print = now
        text = self.line() + (f"  ({note})" if note else "")
        self.stream.write("\r\x1b[2K" + text if self.tty else text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()

    @contextlib.contextmanager
    def watch(self, poll: Callable[[], int], every_s: float = 1.0) -> Iterator[SuiteProgress]:
        """Poll a token counter in a background thread while the block runs."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(every_s):
                self.encoded(int(poll()))

        thread = threading.Thread(target=loop, name="linq-eval-progress", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(timeout=every_s + 1)
            self.close()


__all__ = ["SuiteProgress", "library_bars", "shows_bars"]
