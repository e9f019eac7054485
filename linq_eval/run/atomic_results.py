"""Crash-safe result files: mteb's ``ResultCache`` writing each file into place whole.

``mteb.evaluate`` saves a task's result through the cache it is given. ``AtomicResultCache``
lets mteb write into a private scratch folder, then fsyncs each file and renames it into
``<output>/<org__model>/<revision>/``; the task's per-query evidence (``<Task>.queries.json.gz``,
bound to the result it explains) is removed in the same step, before the new result lands, so
no state of the folder pairs a result with the evidence of another one.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

import mteb

from linq_eval.atomic import (
    FileLock,
    atomic_path,
    disk_full_error,
    fsync_file,
    scratch_prefix,
)
from linq_eval.paths import MODEL_META, MTEB_CACHE_SUBDIR, RUN_SETTINGS, SCRATCH
from linq_eval.results.per_query import evidence_path
from linq_eval.thirdparty.mteb_private import merge_run_settings, read_run_settings


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
                # the old result's evidence goes before the new result lands (a kill in
                # between leaves a result without evidence, never one with another's)
                evidence_path(target, task_result.task_name).unlink(missing_ok=True)
                for path in sorted(written.iterdir()):
                    if path.name == RUN_SETTINGS:
                        _merge_run_settings(target / path.name, path)
                        continue
                    if path.name == MODEL_META:
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


__all__ = ["AtomicResultCache"]
