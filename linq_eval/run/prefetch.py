"""Download a suite's datasets and a model into the Hugging Face cache, for offline runs.

Each task's data is loaded exactly as the run will load it (mteb's own ``load_data``), so what
prefetch fetched is what the run needs; ``--check`` looks, offline, for what is already cached.

    HF_HUB_OFFLINE=1 linq-eval prefetch --check                   # on a compute node
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from huggingface_hub import snapshot_download

from linq_eval.benchmarks import WHOLE_TASK, TaskSelection, mteb_tasks
from linq_eval.errors import ConfigError
from linq_eval.model.loading import resolve_model_path
from linq_eval.profiles import is_random
from linq_eval.run.local_data import find_task_dir

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask

    from linq_eval.profiles import Profile


@dataclass(frozen=True)
class PrefetchItem:
    """One dataset or model and what prefetch found or did."""

    kind: str
    """``dataset`` or ``model``."""
    name: str
    """Task name (datasets) or hub id (model)."""
    source: str
    """Hub repository and revision, or the local folder."""
    status: str
    """``fetched``, ``cached``, ``missing``, ``local`` (nothing to fetch) or ``failed``."""
    detail: str = ""
    """Why it is missing or failed."""
    whole: bool = False
    """A dataset of a task the benchmark lacks: fetched whole (every subset and split)."""

    def line(self) -> str:
        text = f"{self.status:8} {self.kind:7} {self.name}  ({self.source})"
        text += f": {self.detail}" if self.detail else ""
        return text + (f" - {WHOLE_TASK}" if self.whole else "")


def hub_offline() -> bool:
    """Whether the Hugging Face hub is switched off in this environment."""
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _dataset_item(task: AbsTask, data_dir: Path | None, check: bool) -> PrefetchItem:
    name = task.metadata.name
    path = task.metadata.dataset.get("path", "?")
    revision = task.metadata.dataset.get("revision")
    source = f"{path}@{revision}" if revision else str(path)
    if data_dir is not None:
        folder = find_task_dir(name, data_dir)
        if folder is not None:
            return PrefetchItem("dataset", name, str(folder), "local")
    if check:
        try:
            snapshot_download(
                repo_id=str(path), repo_type="dataset", revision=revision, local_files_only=True
            )
        except Exception as exc:  # noqa: BLE001 - any failure means: not usable offline
            return PrefetchItem("dataset", name, source, "missing", type(exc).__name__)
        return PrefetchItem("dataset", name, source, "cached")
    try:
        task.load_data()
    except Exception as exc:  # noqa: BLE001 - report and go on with the other tasks
        return PrefetchItem("dataset", name, source, "failed", f"{type(exc).__name__}: {exc}")
    finally:
        task.unload_data()
    return PrefetchItem("dataset", name, source, "fetched")


def _model_item(profile: Profile, check: bool) -> PrefetchItem:
    model = profile.model
    if model.startswith("pkg:") or is_random(model):
        return PrefetchItem("model", model, "installed package or random weights", "local")
    path, _gguf = resolve_model_path(model)
    if Path(path).exists():
        return PrefetchItem("model", model, path, "local")
    source = f"{model}@{profile.revision}" if profile.revision else model
    try:
        snapshot_download(repo_id=model, revision=profile.revision, local_files_only=check)
    except Exception as exc:  # noqa: BLE001
        return PrefetchItem(
            "model", model, source, "missing" if check else "failed", type(exc).__name__
        )
    return PrefetchItem("model", model, source, "cached" if check else "fetched")


def prefetch(
    selection: TaskSelection,
    profile: Profile | None,
    *,
    data_dir: Path | None = None,
    check: bool = False,
    echo: Callable[[str], None],
) -> list[PrefetchItem]:
    """Fetch (or with ``check``, look for) the data of every task of ``selection`` but those
    with a folder in ``data_dir``, and the model; one item each, ``echo``-ed as it is done."""
    if not check and hub_offline():
        raise ConfigError(
            "HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set: prefetch downloads, so run it where "
            "the hub is reachable with those unset; --check lists what is already cached."
        )
    items: list[PrefetchItem] = []
    for task in mteb_tasks(selection):
        whole = task.metadata.name in selection.whole
        for leaf in task.metadata.tasks if task.is_aggregate else [task]:  # subtasks in its place
            items.append(replace(_dataset_item(leaf, data_dir, check), whole=whole))
            echo(items[-1].line())
    if profile is not None:
        items.append(_model_item(profile, check))
        echo(items[-1].line())
    return items


__all__ = ["PrefetchItem", "hub_offline", "prefetch"]
