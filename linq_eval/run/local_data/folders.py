"""Which folder of a data directory holds a task's data, and what to say when none does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mteb
from huggingface_hub import snapshot_download
from mteb.abstasks import AbsTask

from linq_eval.errors import ConfigError, TaskDataMissing, UnknownNameError


def find_task_dir(task_name: str, data_dir: Path) -> Path | None:
    """The subfolder of ``data_dir`` holding the data of the registered mteb task ``task_name``,
    by the rules README.md gives for ``--data-dir`` (task name, dataset path, the task it
    revises if it reads the same hub data); None when nothing matches."""
    try:
        task = mteb.get_task(task_name)
    except KeyError:
        names = [t.metadata.name for t in mteb.get_tasks(exclude_superseded=False)]
        raise UnknownNameError("task", task_name, names) from None
    return find_dir(task, Path(data_dir))


def find_dir(task: AbsTask, data_dir: Path) -> Path | None:
    folders = _folders(data_dir)
    parents = {o.metadata.name.lower() for o in _originals(task) if _data(o) == _data(task)}
    wanted = (
        ({task.metadata.name.lower()}, "task name"),
        (_dataset_folder_names(task), "dataset path"),
        (parents, "the task it revises"),
    )
    for names, how in wanted:
        hits = [p for p in folders if p.name.lower() in names]
        if len(hits) > 1:
            raise ConfigError(
                f"Several folders in {data_dir} match task {task.metadata.name} by {how}: "
                f"{', '.join(p.name for p in hits)}. Keep one."
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
    path, own = str(task.metadata.dataset.get("path") or "").rstrip("/"), _data(task)
    # None for a revision of a task on the same dataset path with other hub data: a folder
    # named after the dataset holds the original's.
    if (
        not path
        or task.is_aggregate
        or any(_data(o)[0] == own[0] and _data(o) != own for o in _originals(task))
    ):
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


def _data(task: AbsTask) -> tuple[Any, Any]:
    """The task's hub dataset: ``(path, revision)``."""
    return task.metadata.dataset.get("path"), task.metadata.dataset.get("revision")


# --------------------------------------------------------------------------- missing data


def _hub_copy_cached(task: AbsTask) -> bool:
    """Whether the task's hub dataset (at its revision) is in the local Hugging Face cache."""
    path, revision = _data(task)
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


__all__ = ["find_dir", "find_task_dir", "require_task_data"]
