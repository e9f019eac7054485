"""Where a run's results live and the record of how they were made.

- ``AtomicResultCache``: mteb's ``ResultCache`` with crash-safe writes: the task files under
  ``<output>/<org__model>/<revision>/`` are what ``mteb.evaluate`` writes, each one
  renamed into place atomically;
- ``linq_eval/run.json`` beside them, the run record: the latest run's settings, package
  versions and device, and per task its timings, texts, dataset revision and the
  score-deciding settings it was made with (``linq_eval.run_record.ScoreSettings``, its own
  prompt hash included). It is merged across resumed runs and shards under a lock.
- which tasks are done: a complete result file whose recorded settings equal the requested
  ones (``task_done``, ``task_conflicts``).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import platform
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mteb

from linq_eval import __version__
from linq_eval.atomic import (
    FileLock,
    atomic_path,
    atomic_write_json,
    disk_full_error,
    fsync_file,
    scratch_prefix,
)
from linq_eval.errors import ConfigError
from linq_eval.model.check_record import check_outcome
from linq_eval.paths import MTEB_CACHE_SUBDIR, SCRATCH
from linq_eval.results.reading import LEGACY_RUN_RECORD, RUN_RECORD
from linq_eval.run_record import (
    RUN_SCORE_KEYS,
    SCORE_KEYS,
    differing_keys,
    package_version,
    score_part,
    task_settings,
)
from linq_eval.thirdparty.mteb_private import merge_run_settings, read_run_settings

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask
    from mteb.models import ModelMeta

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


class AtomicResultCache(mteb.ResultCache):
    """mteb's ``ResultCache`` with crash-safe writes, for ``mteb.evaluate``.

    mteb writes task files with a plain ``open("w")``: a kill during a write leaves a truncated
    JSON that the next run cannot read. Here mteb writes into a private scratch folder and each
    file is then fsynced and renamed into place. ``run_settings.jsonl`` is merged under the
    folder's record lock (shards share it) and kept sorted, so a folder filled by shards is
    byte-identical to one filled by a single run. ``writable=False`` (ranks other than 0)
    only reads.

    The output folder is itself a results tree, ``<output>/<org__model>/<revision>/<Task>.json``
    (the layout of mteb's results repository), not a cache root with a ``results/`` level of
    its own: mteb reads it as ``mteb.ResultCache(cache_path=<parent>)`` when the folder is named
    ``results`` (the default output), and ``linq-eval export`` copies it for a submission.
    """

    def __init__(
        self, output: str | Path, *, writable: bool = True, lock: FileLock | None = None
    ) -> None:
        self.output = Path(output)
        super().__init__(cache_path=self.output / MTEB_CACHE_SUBDIR)
        self.writable = writable
        self.lock = lock

    def get_task_result_path(self, *args: Any, **kwargs: Any) -> Path:
        """mteb's path of a task's result, with ``<output>`` in place of mteb's
        ``<cache>/results``: the output folder is itself a results tree."""
        path = super().get_task_result_path(*args, **kwargs)
        local = self.cache_path / "results"
        return self.output / path.relative_to(local) if path.is_relative_to(local) else path

    def save_to_cache(
        self,
        task_result: Any,
        model_name: Any,
        model_revision: str | None = None,
        *,
        encode_kwargs: Any = None,
    ) -> None:
        if not self.writable:
            return
        target = self.get_task_result_path(
            model_name=model_name, model_revision=model_revision, task_name=task_result.task_name
        ).parent
        try:
            self._save(task_result, model_name, model_revision, target, encode_kwargs)
        except OSError as exc:  # mteb's own writes into the scratch folder
            full = disk_full_error(exc, target / f"{task_result.task_name}.json")
            if full is not None:
                raise full from exc
            raise

    def _save(
        self,
        task_result: Any,
        model_name: Any,
        model_revision: str | None,
        target: Path,
        encode_kwargs: Any,
    ) -> None:
        scratch_root = self.output / SCRATCH
        scratch_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=scratch_root, prefix=scratch_prefix()) as tmp:
            scratch = mteb.ResultCache(cache_path=tmp)
            scratch.save_to_cache(
                task_result, model_name, model_revision, encode_kwargs=encode_kwargs
            )
            written = scratch.get_task_result_path(
                model_name=model_name,
                model_revision=model_revision,
                task_name=task_result.task_name,
            ).parent
            target.mkdir(parents=True, exist_ok=True)
            with self.lock if self.lock is not None else contextlib.nullcontext():
                for path in sorted(written.iterdir()):
                    if path.name == "run_settings.jsonl":
                        _merge_run_settings(target / path.name, path)
                        continue
                    if path.name == "model_meta.json":
                        _canonical_model_meta(path)
                    fsync_file(path)
                    with atomic_path(target / path.name) as dest:
                        path.replace(dest)


def _canonical_model_meta(path: Path) -> None:
    """Sort model_meta.json's ``training_datasets``: mteb dumps it from a set, in an order that
    changes from process to process (string hashing), and identical runs must give identical
    files."""
    meta = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(meta.get("training_datasets"), list):
        meta["training_datasets"] = sorted(meta["training_datasets"], key=str)
        path.write_text(json.dumps(meta, default=str, indent=4), encoding="utf-8")


def _merge_run_settings(target: Path, new: Path) -> None:
    """Merge mteb's run_settings.jsonl entries into ``target``, sorted, atomically."""
    entries = read_run_settings(new)
    with atomic_path(target) as tmp:
        if target.exists():
            tmp.write_bytes(target.read_bytes())
        merge_run_settings(tmp, entries)
        lines = sorted(line for line in tmp.read_text(encoding="utf-8").splitlines() if line)
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def task_done(folder: Path, task: AbsTask, *, move_unreadable: bool = False) -> bool:
    """Whether ``folder`` holds complete results for the task (every split and subset).

    An unreadable file (e.g. truncated by a tool without atomic writes) means not done; with
    ``move_unreadable`` it is moved aside as ``<Task>.json.unreadable`` so mteb reruns the task.
    """
    path = folder / f"{task.metadata.name}.json"
    if not path.is_file():
        return False
    try:
        result = mteb.TaskResult.from_disk(path)
    except Exception as exc:  # noqa: BLE001 - any parse failure means: run it again
        if move_unreadable:
            _logger.warning("Result file %s is unreadable (%s): moved aside, rerunning", path, exc)
            path.replace(path.with_name(path.name + ".unreadable"))
        return False
    return not result.get_missing_evaluations(task)


def read_score(folder: Path, task: AbsTask) -> float | None:
    """The task's main score (mteb's 0..1 scale, mean over its splits and subsets; those the
    task object carries only, should the file hold more) from its result file."""
    try:
        result = mteb.TaskResult.from_disk(folder / f"{task.metadata.name}.json")
        return float(result.validate_and_filter_scores(task).get_score())
    except Exception:  # noqa: BLE001
        return None


def result_folder(output: Path, meta: ModelMeta) -> Path:
    """``<output>/<org__model>/<revision>``: where a run files a model's results."""
    return output / meta.model_name_as_path() / str(meta.revision)


# --------------------------------------------------------------------------- run record


def read_run_record(folder: Path) -> dict[str, Any] | None:
    """The folder's run record (or an earlier version's, beside the task files), None if it
    has none."""
    path = folder / RUN_RECORD
    if not path.is_file():
        path = folder / LEGACY_RUN_RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); move it aside to continue") from None
    if not isinstance(record, dict) or not isinstance(record.get("settings", {}), dict):
        raise ConfigError(f"{path}: not a linq-eval run record")
    return record


def _package_versions() -> dict[str, str | None]:
    """Versions of the packages that matter for scores, and Python's."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    out.update({name: package_version(name) for name in _VERSION_PACKAGES})
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
            expected["prompt_hash"], keys = hashes[name], SCORE_KEYS
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
    ``allow_settings_change``); add the tasks, each with its settings and its own prompt
    hash; recompute the folder's prompt hash over every task; write. Returns the new record.
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
                "%s holds tasks made with other settings:\n%s", folder, format_conflicts(conflicts)
            )
        merged = _own_settings(record)
        for name, entry in new.items():
            names = [name, *(entry.get("subtasks") or [])]
            merged[name] = {**entry, "settings": {**requested, "prompt_hash": prompt_hash(names)}}
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


def now() -> str:
    """The local time, to the second, with its UTC offset."""
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


__all__ = [
    "RUN_RECORD",
    "SCRATCH",
    "AtomicResultCache",
    "format_conflicts",
    "now",
    "read_run_record",
    "read_score",
    "result_folder",
    "task_conflicts",
    "task_done",
    "update_run_record",
]
