"""Feed mteb's registered tasks from local files, so runs work offline with the real task names.

A task is matched to a subfolder of a data directory (``find_task_dir``) and its ``dataset`` is
filled in the structure mteb's own ``load_data`` produces (``load_local_task``); mteb then
evaluates and names the results exactly as for the hub data. A task whose data comes in subsets
(languages) reads each subset from a subfolder named like it (``STS22.v2/en/test.jsonl``).

Formats, per task type (one module each; splits are mteb's, e.g. ``test``):

- Retrieval, Reranking (``retrieval``): BEIR folders (``corpus.jsonl``, ``queries.jsonl``,
  ``qrels/<split>.tsv``); reranking adds ``top_ranked/<split>.jsonl``, or comes as mteb 1's
  ``<split>.jsonl`` with ``query``, ``positive``, ``negative``.
- STS (``sts``): STS Benchmark's release files, or ``<split>.jsonl`` / ``.csv`` with
  ``sentence1``, ``sentence2``, ``score``.
- Classification (``classification``): Banking77's release files, or ``text``, ``label``.
- Clustering (``clustering``): ``sentences``, ``labels``: one text per row, or one set per row.
- PairClassification (``pair_classification``): ``sentence1``, ``sentence2``, ``labels`` (0/1).
- Summarization (``summarization``): ``text``, ``human_summaries``, ``machine_summaries``,
  ``relevance``.

Files hold the data as mteb's hub datasets hold it, and the task's own ``dataset_transform``
then runs on it as after a hub download (subsampling, regrouping a ``.v2`` task's sets), so the
same files give the same scores. Pair classification files hold the evaluated pairs instead (see
``pair_classification``). Every problem in a file is reported at once, as a ``DataError``
naming the file and line. Files are UTF-8 (a leading byte-order mark is ignored).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mteb.abstasks import (
    AbsTask,
    AbsTaskClassification,
    AbsTaskClustering,
    AbsTaskClusteringLegacy,
    AbsTaskPairClassification,
    AbsTaskRetrieval,
    AbsTaskSTS,
    AbsTaskSummarization,
)

from linq_eval.errors import ConfigError, DataError
from linq_eval.run.local_data.classification import load_classification
from linq_eval.run.local_data.clustering import load_clustering
from linq_eval.run.local_data.files import counting_skipped_lines, not_utf8
from linq_eval.run.local_data.folders import (
    TaskDataMissing,
    find_dir,
    find_task_dir,
    require_task_data,
)
from linq_eval.run.local_data.pair_classification import load_pair_classification
from linq_eval.run.local_data.retrieval import load_retrieval
from linq_eval.run.local_data.sts import load_sts
from linq_eval.run.local_data.summarization import load_summarization
from linq_eval.run_record import HUB_SOURCE

__all__ = [
    "SUPPORTED_TYPES",
    "DataError",
    "TaskDataMissing",
    "counting_skipped_lines",
    "data_identity",
    "find_task_dir",
    "load_local_task",
    "require_task_data",
]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Kind:
    """How one mteb task type is read from local files."""

    bases: tuple[type[AbsTask], ...]
    """mteb's abstract task classes of the type; a task must be one of them."""
    load: Callable[[Any, Path], Any]
    """Reads one subset's folder: the eval splits in mteb's structure."""
    transform: bool = True
    """Whether the task's own ``dataset_transform`` runs after reading, as after a download."""


_KINDS: dict[str, _Kind] = {
    "Retrieval": _Kind((AbsTaskRetrieval,), load_retrieval),
    "Reranking": _Kind((AbsTaskRetrieval,), load_retrieval),
    "STS": _Kind((AbsTaskSTS,), load_sts),
    "Classification": _Kind((AbsTaskClassification,), load_classification),
    "Clustering": _Kind((AbsTaskClustering, AbsTaskClusteringLegacy), load_clustering),
    "PairClassification": _Kind(
        (AbsTaskPairClassification,), load_pair_classification, transform=False
    ),
    "Summarization": _Kind((AbsTaskSummarization,), load_summarization),
}

SUPPORTED_TYPES = tuple(_KINDS)
"""The mteb task types that can be fed from local files."""


def load_local_task(task: AbsTask, data_dir: Path) -> Path | None:
    """Fill ``task.dataset`` from the folder of ``data_dir`` that matches the task.

    Returns None, touching nothing, when no folder matches. Otherwise loads the task's eval
    splits (and a classification task's train split) in the structure mteb's ``load_data``
    produces, runs the task's ``dataset_transform`` as mteb does after a download, sets
    ``task.data_loaded`` and returns the folder. Raises ``DataError`` for a bad file and
    ``ConfigError`` for a task that cannot be fed from local files.
    """
    folder = find_dir(task, Path(data_dir))
    if folder is None:
        return None
    # The way to read the task; tasks whose hub data local files cannot reproduce are refused.
    meta, cls = task.metadata, type(task)
    kind = _KINDS.get(meta.type)
    if kind is None or not isinstance(task, kind.bases):
        raise ConfigError(
            f"Folder {folder} matches task {meta.name}, but local data is supported for "
            f"{', '.join(SUPPORTED_TYPES)} tasks only (this one is {meta.type})."
        )
    if not any(cls.load_data in (base.load_data, AbsTask.load_data) for base in kind.bases):
        raise ConfigError(
            f"Task {meta.name} has its own load_data, which local files cannot reproduce; "
            "load it from the hub instead."
        )
    if isinstance(task, AbsTaskClassification) and task.is_cross_validation:
        raise ConfigError(f"Task {meta.name} uses cross-validation; not supported locally.")
    try:
        if task.metadata.is_multilingual or list(task.hf_subsets) != ["default"]:
            subsets = task.hf_subsets
            task.dataset = {s: kind.load(task, _subset_dir(task, folder, s)) for s in subsets}
        elif task.metadata.type in ("Retrieval", "Reranking"):
            task.dataset = {"default": kind.load(task, folder)}
        else:
            task.dataset = kind.load(task, folder)
    except UnicodeDecodeError:
        raise not_utf8(folder) from None
    if kind.transform and type(task).dataset_transform is not AbsTask.dataset_transform:
        try:  # the task's own transform, as mteb's load_data runs it after a download
            task.dataset_transform()
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise ConfigError(
                f"Task {task.metadata.name}'s own dataset_transform (run on its data as after a "
                f"download) failed on the files in {folder}: {type(exc).__name__}: {exc}"
            ) from exc
    task.data_loaded = True
    _logger.info("Loaded %s from %s", task.metadata.name, folder)
    return folder


def data_identity(task: AbsTask, folder: Path | None) -> tuple[str, str]:
    """Where a task's data came from and what identifies its content: ``(source, hash)``.

    Local files (``folder``, as ``load_local_task`` returned it): the folder's absolute path and
    ``sha256:`` over every file under it (relative path and bytes, in path order), so changed
    files and the same files moved elsewhere are told apart. The hub: the dataset's URI and
    its revision, which fixes its content.
    """
    if folder is None:
        dataset = task.metadata.dataset or {}
        name = f"{dataset.get('path')}@{dataset.get('revision')}"
        return f"{HUB_SOURCE}{name}", name
    digest = hashlib.sha256()
    root = Path(folder).resolve()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return str(root), f"sha256:{digest.hexdigest()[:32]}"


def _subset_dir(task: AbsTask, folder: Path, subset: str) -> Path:
    path = folder / subset
    if not path.is_dir():
        present = ", ".join(sorted(p.name for p in folder.iterdir() if p.is_dir())) or "none"
        msg = (
            f"missing folder: {task.metadata.name} reads subset {subset!r} from a subfolder "
            f"named like it (subfolders present: {present})"
        )
        raise DataError(path, [(None, msg)])
    return path
