"""Which folder of a data directory holds a task's data, and what to say when none does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import mteb
from huggingface_hub import snapshot_download
from mteb.abstasks import AbsTask

from linq_eval.errors import ConfigError, TaskDataMissing, UnknownNameError


def find_task_dir(task_name: str, data_dir: Path) -> Path | None:
    """The subfolder of ``data_dir`` holding the data of the registered mteb task ``task_name``.

    A folder matches, case-insensitively, when named like the task (``SciFact``), like the last
    component of the task's mteb dataset path, without a ``-sts`` suffix (``mteb/scifact`` ->
    ``scifact``, ``mteb/stsbenchmark-sts`` -> ``stsbenchmark``), or like a task it was adapted
    from that reads the very same hub data (``TwentyNewsgroupsClustering.v2`` takes a
    ``TwentyNewsgroupsClustering`` folder: same dataset and revision, regrouped by mteb). The
    first of these that matches wins. A revised task whose hub data differs from its original's
    on the same dataset path (``Banking77Classification.v2``: corrected labels) only matches its
    own name, since a folder named after the dataset holds the original version. None when
    nothing matches.
    """
    return find_dir(_registered_task(task_name), Path(data_dir))


def _registered_task(task_name: str) -> AbsTask:
    try:
        return mteb.get_task(task_name)
    except KeyError:
        names = [t.metadata.name for t in mteb.get_tasks(exclude_superseded=False)]
        raise UnknownNameError("task", task_name, names) from None


def find_dir(task: AbsTask, data_dir: Path) -> Path | None:
    folders = _folders(data_dir)
    name = task.metadata.name.lower()
    wanted = (
        ({name}, "task name"),
        (_dataset_folder_names(task), "dataset path"),
        ({p.lower() for p in _same_data_parents(task)}, "the task it revises"),
    )
    for names, how in wanted:
        hits = [p for p in folders if p.name.lower() in names]
        if len(hits) > 1:
            listed = ", ".join(p.name for p in hits)
            raise ConfigError(
                f"Several folders in {data_dir} match task {task.metadata.name} by {how}: "
                f"{listed}. Keep one."
            )
        if hits:
            return hits[0]
    return None


def _folders(data_dir: Path) -> list[Path]:
    if not data_dir.is_dir():
        raise ConfigError(f"Data directory {data_dir} does not exist or is not a directory.")
    return sorted(p for p in data_dir.iterdir() if p.is_dir())


def _dataset_folder_names(task: AbsTask) -> set[str]:
    """Folder names (lower case) that stand for the task's mteb dataset path."""
    path = str(task.metadata.dataset.get("path") or "").rstrip("/")
    if not path or task.is_aggregate or _differs_from_original(task):
        return set()
    last = path.rsplit("/", 1)[-1].lower()
    return {last, last.removesuffix("-sts")}


def _originals(task: AbsTask) -> list[AbsTask]:
    """The registered tasks this one was adapted from (itself excluded)."""
    out = []
    for name in task.metadata.adapted_from or []:
        if name == task.metadata.name:
            continue
        try:
            out.append(mteb.get_task(name))
        except KeyError:
            continue
    return out


def _differs_from_original(task: AbsTask) -> bool:
    """True when the task revises a task on the same dataset path but other hub data."""
    path, revision = task.metadata.dataset.get("path"), task.metadata.dataset.get("revision")
    return any(
        o.metadata.dataset.get("path") == path and o.metadata.dataset.get("revision") != revision
        for o in _originals(task)
    )


def _same_data_parents(task: AbsTask) -> list[str]:
    """Names of the tasks it was adapted from that read the same dataset and revision."""
    own = (task.metadata.dataset.get("path"), task.metadata.dataset.get("revision"))
    return [
        o.metadata.name
        for o in _originals(task)
        if (o.metadata.dataset.get("path"), o.metadata.dataset.get("revision")) == own
    ]


# --------------------------------------------------------------------------- missing data


def _hub_copy_cached(task: AbsTask) -> bool:
    """Whether the task's hub dataset (at its revision) is in the local Hugging Face cache."""
    path, revision = task.metadata.dataset.get("path"), task.metadata.dataset.get("revision")
    try:
        snapshot_download(
            repo_id=str(path), repo_type="dataset", revision=revision, local_files_only=True
        )
    except Exception:  # noqa: BLE001 - any failure means: not usable offline
        return False
    return True


def require_task_data(tasks: Sequence[AbsTask], data_dir: Path) -> None:
    """With the hub offline: every task (or subtask) has a folder in ``data_dir`` or a cached copy.

    Raises ``TaskDataMissing`` naming the tasks without either, the folders that are there and
    how to get the data (``linq-eval prefetch`` where the hub is reachable), instead of the
    hub's "Couldn't reach ... (OfflineModeIsEnabled)" in the middle of a run.
    """
    data_dir = Path(data_dir)
    folders = _folders(data_dir)
    leaves = [p for t in tasks for p in (t.metadata.tasks if t.is_aggregate else [t])]
    missing = [
        t.metadata.name for t in leaves if find_dir(t, data_dir) is None and not _hub_copy_cached(t)
    ]
    if not missing:
        return
    names = " ".join(missing)
    there = ", ".join(p.name for p in folders) or "none"
    raise TaskDataMissing(
        f"{len(missing)} task(s) not found under the data folder {data_dir}: {', '.join(missing)} "
        f"(folders there: {there}), and the hub is offline with no cached copy. Add a folder "
        "named like each task (see linq_eval.run.local_data for the formats), or fetch them "
        f"where the hub is reachable: `linq-eval prefetch --tasks {names}` (then share HF_HOME)."
    )


__all__ = [
    "find_dir",
    "find_task_dir",
    "require_task_data",
]
