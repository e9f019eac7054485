"""What a run folder holds: which tasks are done, and the record of how they were made.

- ``<output>/<org__model>/<revision>/<Task>.json``: mteb's result files (written by
  ``linq_eval.run.atomic_results.AtomicResultCache``, each renamed into place whole);
- ``linq_eval/run.json`` beside them, the run record: the latest run's settings, package
  versions and device, and per task its timings, texts, dataset revision and the
  score-deciding settings it was made with (``linq_eval.run_record.ScoreSettings``, its own
  prompt hash included). It is merged across resumed runs and shards under a lock.
- which tasks are done: a complete result file whose recorded settings equal the requested
  ones (``task_done``, ``task_conflicts``).
"""

from __future__ import annotations

import logging
import math
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from linq_eval import __version__
from linq_eval.atomic import FileLock, atomic_write_json
from linq_eval.errors import ConfigError, ResultsError
from linq_eval.model.check_record import check_outcome
from linq_eval.provenance import mteb_version, now, package_version
from linq_eval.registry import TaskInfo
from linq_eval.results.reading import LEGACY_RUN_RECORD, RUN_RECORD, read_run_record
from linq_eval.results.result_file import read_result_file
from linq_eval.run_record import (
    RUN_SCORE_KEYS,
    differing_keys,
    score_part,
    task_settings,
)

_logger = logging.getLogger(__name__)


_VERSION_PACKAGES = (
    "linq-eval",
    "mteb",
    "torch",
    "transformers",
    "tokenizers",
    "datasets",
    "numpy",
    "scikit-learn",
    "sentence-transformers",
    "flash-attn",
)
"""Packages whose versions the run record keeps."""


# --------------------------------------------------------------------------- result files


def task_done(folder: Path, task: TaskInfo, *, move_unreadable: bool = False) -> bool:
    """Whether ``folder`` holds complete results for the task (every split and subset).

    An unreadable file (e.g. truncated by a tool without atomic writes) means not done; with
    ``move_unreadable`` it is moved aside as ``<Task>.json.unreadable`` so mteb reruns the task.
    """
    path = folder / f"{task.name}.json"
    if not path.is_file():
        return False
    try:
        result = read_result_file(path)
    except ResultsError as exc:  # any parse failure means: run it again
        if move_unreadable:
            _logger.warning("Result file %s is unreadable (%s): moved aside, rerunning", path, exc)
            path.replace(path.with_name(path.name + ".unreadable"))
        return False
    return not result.missing(task)


def read_score(folder: Path, task: TaskInfo) -> float | None:
    """The task's main score (mteb's 0..1 scale, mean over its splits and subsets; those the
    task object carries only, should the file hold more) from its result file."""
    try:
        score = read_result_file(folder / f"{task.name}.json").filtered(task).score()
    except ResultsError:
        return None
    return None if math.isnan(score) else score


# --------------------------------------------------------------------------- run record


def _package_versions() -> dict[str, str | None]:
    """Versions of the packages that matter for scores, and Python's."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    out.update({name: package_version(name) for name in _VERSION_PACKAGES})
    out["mteb"] = mteb_version()  # mteb or mteb-core: the same modules
    return out


def task_conflicts(
    record: Mapping[str, Any] | None,
    requested: Mapping[str, Any],
    tasks: Iterable[str],
    task_hashes: Mapping[str, str] | None = None,
) -> dict[str, list[str]]:
    """The ``tasks`` of a record made with other score-deciding settings than ``requested``:
    task -> ``key: recorded (recorded) vs requested (this run)`` lines.

    A task's prompt hash is compared when ``task_hashes`` has it and the record keeps the
    task's own settings; a setting the record does not keep (an older record) is not compared.
    """
    conflicts: dict[str, list[str]] = {}
    hashes = task_hashes or {}
    for name in tasks:
        recorded, own = task_settings(record, name)
        if recorded is None:
            continue
        expected = dict(requested)
        keys = RUN_SCORE_KEYS
        if own and name in hashes:
            expected["prompt_hash"], keys = hashes[name], (*RUN_SCORE_KEYS, "prompt_hash")
        diffs = [
            f"{key}: {recorded.get(key)!r} (recorded) vs {expected.get(key)!r} (this run)"
            for key in differing_keys(recorded, expected, keys=keys)
        ]
        if diffs:
            conflicts[name] = diffs
    return conflicts


def format_conflicts(conflicts: Mapping[str, Sequence[str]]) -> str:
    """One line per task and differing setting."""
    return "\n".join(f"  {task}: {diff}" for task, diffs in conflicts.items() for diff in diffs)


def _own_settings(record: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every task entry with its own settings: entries of older records get the folder's
    score-deciding settings (without the folder's prompt hash, which covered every task)."""
    folder = record.get("settings") or {}
    legacy = {k: folder[k] for k in RUN_SCORE_KEYS if k in folder}
    tasks = {}
    for name, entry in (record.get("tasks") or {}).items():
        tasks[name] = entry if "settings" in entry else {**entry, "settings": dict(legacy)}
    return tasks


def update_run_record(
    folder: Path,
    lock: FileLock,
    settings: dict[str, Any],
    *,
    allow_settings_change: bool,
    prompt_hash: Callable[[Sequence[str]], str],
    device: str,
    tasks: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Merge this run's settings and finished tasks into the folder's record, atomically.

    Under the folder's record lock: reread; check that the record's other tasks were made
    with this run's score-deciding settings (else ConfigError naming them, unless
    ``allow_settings_change``); add the tasks (each entry with its own ``settings``: this run's,
    its prompt hash and its data identity); recompute the folder's prompt hash over every task;
    write. Returns the new record.
    """
    new = tasks or {}
    requested = score_part(settings)
    with lock:
        record = read_run_record(folder) or {"tasks": {}}
        others = [n for n in record.get("tasks") or {} if n not in new]
        conflicts = task_conflicts(record, requested, others)
        if conflicts and not allow_settings_change:
            raise ConfigError(
                f"{folder / RUN_RECORD} holds tasks made with other settings:\n"
                + format_conflicts(conflicts)
                + "\nUse another --output, or --allow-settings-change to mix them on purpose."
            )
        if conflicts:
            _logger.warning(
                "%s holds tasks this run does not touch, made with other settings; they are "
                "kept as they are (--allow-settings-change):\n%s",
                folder,
                format_conflicts(conflicts),
            )
        merged = {**_own_settings(record), **new}
        names = [n for name, e in merged.items() for n in (name, *(e.get("subtasks") or []))]
        record = {
            "linq_eval_version": __version__,
            "settings": {**settings, "prompt_hash": prompt_hash(names) if names else None},
            "tasks": dict(sorted(merged.items())),
            "versions": _package_versions(),
            "device": device,
            "model_check": check_outcome(settings.get("model"), settings.get("revision")),
            "updated": now(),
        }
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / RUN_RECORD, record)
        (folder / LEGACY_RUN_RECORD).unlink(missing_ok=True)  # mteb's loader would choke on it
    return record


__all__ = ["format_conflicts", "read_score", "task_conflicts", "task_done", "update_run_record"]
