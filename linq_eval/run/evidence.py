"""Keeping per-query evidence while a run evaluates retrieval and reranking tasks.

mteb writes a task's full ranking (top 1,000 documents per query) to
``<folder>/<Task>_predictions.json`` when ``mteb.evaluate`` gets a ``prediction_folder``. That
file can reach hundreds of MB (MSMARCO dev), so a run lets mteb write it into a private scratch
folder, turns it into the compact evidence of ``linq_eval.results.per_query`` (per query: the
main metric and the top-10 ids), bound to the result file mteb has just written and to the
task's settings, beside that file, and deletes it. Which tasks keep evidence is mteb's registry's
word (``TaskInfo.ranked``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linq_eval.atomic import scratch_prefix
from linq_eval.results.per_query import bind, task_evidence, write_evidence

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask


@contextlib.contextmanager
def prediction_folder(scratch_root: Path, enabled: bool) -> Iterator[Path | None]:
    """A private folder for mteb's predictions (None when not ``enabled``), removed after."""
    if not enabled:
        yield None
        return
    scratch_root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=scratch_root, prefix=scratch_prefix()))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def save_evidence(
    task: AbsTask, predictions: Path, result_folder: Path, settings: Mapping[str, Any]
) -> list[Path]:
    """Write the evidence of every part of ``task`` whose predictions mteb wrote, each bound to
    its result file (a subtask's own, else the task's) and to ``settings`` (the task's
    score-deciding settings, as its run record entry keeps them); returns the files written.
    A part whose data mteb unloaded is loaded again (aggregates' subtasks)."""
    written = []
    for part in task.metadata.tasks if task.is_aggregate else [task]:  # CQADupstackRetrieval
        path = predictions / part.prediction_file_name
        if not path.is_file():
            continue
        if not part.data_loaded:
            part.load_data()
        content = json.loads(path.read_text(encoding="utf-8"))
        evidence = task_evidence(part, content)
        result = result_folder / f"{part.metadata.name}.json"
        if not result.is_file():
            result = result_folder / f"{task.metadata.name}.json"
        evidence.binding = bind(result, settings, evidence)
        written.append(write_evidence(result_folder, evidence))
    return written


__all__ = ["prediction_folder", "save_evidence"]
