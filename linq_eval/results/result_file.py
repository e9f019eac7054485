"""One mteb result file (``<Task>.json``), read without importing mteb (seconds on every
``table`` and ``compare``), and filtered and averaged as ``mteb.TaskResult`` does; a file in an
older layout (mteb 1.x before 1.11) is converted by mteb's own ``TaskResult.from_disk``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from linq_eval.errors import ResultsError
from linq_eval.registry import TaskInfo

Entry = Mapping[str, Any]
"""One split and subset's scores: ``hf_subset``, ``languages``, ``main_score`` and metrics."""


@dataclass(frozen=True)
class ResultFile:
    """The scores of one task as a result file holds them."""

    task_name: str
    """The task the file holds (its ``task_name``)."""
    scores: Mapping[str, tuple[Entry, ...]]
    """Split -> one entry per subset."""
    mteb_version: str | None = None
    """The mteb version that wrote it (None for some published mteb 1.x files)."""
    dataset_revision: str | None = None
    """The dataset revision it was scored on, as the file says."""

    def missing(self, task: TaskInfo) -> dict[str, list[str]]:
        """The task's splits and subsets the file has no score for (split -> subsets)."""
        out: dict[str, list[str]] = {}
        for split in task.eval_splits:
            present = {e.get("hf_subset") for e in self.scores.get(split, ())}
            absent = [s for s in task.hf_subsets if s not in present]
            if absent:
                out[split] = absent
        return out

    def filtered(self, task: TaskInfo) -> ResultFile:
        """Only the task's splits and subsets (an aggregate's single ``default`` subset)."""
        wanted = {"default"} if task.is_aggregate else set(task.hf_subsets)
        kept = {
            split: tuple(e for e in entries if e.get("hf_subset") in wanted)
            for split, entries in self.scores.items()
            if split in task.eval_splits
        }
        return replace(self, scores=kept)

    @property
    def entries(self) -> list[Entry]:
        """Every split's and subset's entry."""
        return [e for entries in self.scores.values() for e in entries]

    def score(self, field: str = "main_score") -> float:
        """The mean of ``field`` over every split and subset (NaN where one lacks a number),
        as ``TaskResult.get_score`` computes it (numpy's mean)."""
        values = [e.get(field) for e in self.entries]
        if not values or not all(isinstance(v, (int, float)) for v in values):
            return math.nan
        return float(np.mean(values))

    def with_main_score(self, field: str) -> ResultFile:
        """The file with ``field`` as every entry's main score."""
        scores = {
            s: tuple({**e, "main_score": e[field]} for e in es) for s, es in self.scores.items()
        }
        return replace(self, scores=scores)


_CONVERTED_BEFORE = (1, 11)
"""mteb versions before this wrote another layout, which ``TaskResult.from_disk`` converts."""


def _release(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split("."):
        digits = "".join(c for c in part if c.isdigit()) if part[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _fast(data: Any) -> ResultFile | None:
    """The file in the layout mteb writes since 1.11, or None when it is in another one."""
    if not isinstance(data, dict) or not isinstance(data.get("task_name"), str):
        return None
    version, scores = data.get("mteb_version", ""), data.get("scores")
    if not isinstance(scores, dict) or (version is not None and not isinstance(version, str)):
        return None
    if version is not None and _release(version) < _CONVERTED_BEFORE:
        return None  # an older layout (a missing version counts as one, as for mteb)
    for entries in scores.values():
        if not isinstance(entries, list):
            return None
        for e in entries:
            if not isinstance(e, dict) or not isinstance(e.get("hf_subset"), str):
                return None
            if any(isinstance(v, dict) for v in e.values()):
                return None  # nested scores of mteb 1.x pair classification
    parsed = {split: tuple(entries) for split, entries in scores.items()}
    return ResultFile(data["task_name"], parsed, version, data.get("dataset_revision"))


def read_result_file(path: Path) -> ResultFile:
    """Read one result file; any failure is a ``ResultsError`` naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsError(
            f"{path}: not an mteb TaskResult JSON ({type(exc).__name__}: {exc})"
        ) from None
    result = _fast(data)
    if result is None:  # an older layout, converted by mteb's own reader
        try:
            from mteb import TaskResult

            old = TaskResult.from_disk(path)
        except Exception as exc:  # noqa: BLE001 - pydantic, JSON and registry errors alike
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ResultsError(
                f"{path}: not an mteb TaskResult JSON ({type(exc).__name__}: {first})"
            ) from None
        scores = {split: tuple(entries) for split, entries in old.scores.items()}
        result = ResultFile(old.task_name, scores, old.mteb_version, old.dataset_revision)
    if result.task_name != path.stem:
        raise ResultsError(
            f"{path}: file name says task {path.stem!r} but the file holds {result.task_name!r}"
        )
    return result


__all__ = ["Entry", "ResultFile", "read_result_file"]
