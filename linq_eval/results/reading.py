"""Reading result folders: runs, plain mteb result folders, shipped baselines, mteb's remote.

A result folder uses mteb's ``ResultCache`` layout; any of these can be given: a cache root
``DIR`` (holding ``results/``), a results root (holding ``<org__model>/<revision>/``), one
``<org__model>`` folder, or one ``<org__model>/<revision>`` folder, which is one
:class:`ResultSet` (one row of a table).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linq_eval import paths
from linq_eval.errors import ResultsError, UnknownNameError
from linq_eval.paths import MODEL_META
from linq_eval.results.result_file import ResultFile, read_result_file

RUN_RECORD = "linq_eval/run.json"
"""The run record ``linq-eval run`` writes in each ``<org__model>/<revision>`` folder."""
_BASELINE_INDEX = "linq_eval_baseline.json"
"""Index of a shipped baseline set: model order, display labels and provenance."""
LEGACY_RUN_RECORD = "linq_eval_run.json"
"""Where earlier versions kept the run record: beside the task files, where mteb's loader takes
every ``*.json`` for a task result (hence the subfolder now). Still read."""
_NON_TASK_FILES = frozenset({LEGACY_RUN_RECORD, _BASELINE_INDEX, MODEL_META})
"""JSON files in a result folder that are not mteb task results."""
_BASELINE_PREFIX = "published"
"""Name of the shipped baseline set (``published:<org/model>`` names one of its models)."""


@dataclass
class ResultSet:
    """The results of one model at one revision: one ``<org__model>/<revision>`` folder."""

    model: str
    """Model name (``org/name``), from model_meta.json or the folder name."""
    revision: str
    """Model revision, or the folder's name for it (``external``, ``no_revision_available``)."""
    path: Path
    """The ``<org__model>/<revision>`` folder."""
    source: str
    """``run`` (has a run record), ``mteb`` (plain mteb folder), ``published`` or ``remote``."""
    task_files: dict[str, Path]
    """Task name -> its result file."""
    run_record: dict[str, Any] | None = None
    """Contents of the run record (linq_eval/run.json), None where the folder has none."""
    label: str = ""
    """Display name in tables (short model name unless a baseline index gives one)."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """Where a baseline's numbers come from (empty for runs)."""
    _results: dict[str, ResultFile] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.label:
            self.label = self.model.rsplit("/", 1)[-1]

    @property
    def settings(self) -> dict[str, Any] | None:
        """The run's settings (model, revision, dtype, max_length, policy, prompt_hash ...)."""
        return None if self.run_record is None else self.run_record.get("settings")

    @property
    def task_names(self) -> list[str]:
        return sorted(self.task_files)

    @property
    def is_baseline(self) -> bool:
        """True for a model of a shipped baseline set (its source is the set's name)."""
        return self.source not in ("run", "mteb", "remote")

    @property
    def ref(self) -> str:
        """How to name this result set on the command line (``published:<org/model>``)."""
        return (
            f"{self.source}:{self.model}" if self.is_baseline else f"{self.model}@{self.revision}"
        )

    def task_result(self, task_name: str) -> ResultFile | None:
        """The result file of one task, or None when the folder has no file for it."""
        if task_name not in self.task_files:
            return None
        if task_name not in self._results:
            self._results[task_name] = read_result_file(self.task_files[task_name])
        return self._results[task_name]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: unreadable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_run_record(folder: Path) -> dict[str, Any] | None:
    """A result folder's run record (or an earlier version's, beside the task files); None
    when it has none. ``ResultsError`` naming the file when it cannot be read."""
    path = next(
        (folder / n for n in (RUN_RECORD, LEGACY_RUN_RECORD) if (folder / n).is_file()), None
    )
    if path is None:
        return None
    record = _read_json(path)
    if not isinstance(record.get("settings", {}), dict):
        raise ResultsError(f"{path}: not a linq-eval run record ('settings' must be an object)")
    return record


def _task_files(folder: Path) -> dict[str, Path]:
    return {
        p.stem: p
        for p in sorted(folder.glob("*.json"))
        if p.name not in _NON_TASK_FILES and p.is_file()
    }


def _has_task_files(folder: Path) -> bool:
    return folder.is_dir() and bool(_task_files(folder))


def _read_revision_folder(folder: Path, source: str | None = None) -> ResultSet:
    """One ``<org__model>/<revision>`` folder as a ResultSet."""
    meta = _read_json(folder / MODEL_META) if (folder / MODEL_META).is_file() else {}
    run_record = read_run_record(folder)
    return ResultSet(
        model=meta.get("name") or folder.parent.name.replace("__", "/"),
        revision=meta.get("revision") or folder.name,
        path=folder,
        source=source or ("run" if run_record is not None else "mteb"),
        task_files=_task_files(folder),
        run_record=run_record,
    )


def _revision_folders(root: Path) -> list[Path]:
    """The ``<org__model>/<revision>`` folders a given path stands for (see module docstring)."""
    if (root / "results").is_dir():  # a ResultCache root: what `run --output DIR` writes
        found = _folders_below(root / "results")
        if found:
            return found
    if _has_task_files(root):
        return [root]
    return _folders_below(root)


def _folders_below(root: Path) -> list[Path]:
    """Revision folders of a results root, or of one ``<org__model>`` folder."""
    children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    direct = [c for c in children if _has_task_files(c)]
    if direct:  # root is one <org__model> folder
        return direct
    found = []
    for child in children:
        found += sorted(g for g in child.iterdir() if g.is_dir() and _has_task_files(g))
    return found


def load_results(path: str | Path, *, validate: bool = True) -> list[ResultSet]:
    """Every result set under ``path``; ResultsError when there is none or (with ``validate``)
    a file is not an mteb TaskResult."""
    root = Path(path).expanduser()
    if not root.exists():
        raise ResultsError(f"Result folder {str(root)!r} does not exist.")
    if not root.is_dir():
        raise ResultsError(
            f"{str(root)!r} is not a folder; expected a result folder "
            "(<root>/<org__model>/<revision>/<Task>.json)."
        )
    if (root / _BASELINE_INDEX).is_file():
        sets = _load_baseline_folder(root)
    else:
        folders = _revision_folders(root)
        if not folders:
            raise ResultsError(
                f"No mteb result files under {str(root)!r}; expected <Task>.json files in "
                "<root>/[results/]<org__model>/<revision>/ (what `linq-eval run --output` writes)."
            )
        sets = [_read_revision_folder(f) for f in folders]
    if validate:
        _validate(sets)
    return sets


def _validate(sets: Iterable[ResultSet]) -> None:
    """Read every task file now, collecting all malformed files into one error."""
    problems = []
    for rs in sets:
        bad = []
        for name in rs.task_names:
            try:
                rs.task_result(name)
            except ResultsError as exc:
                bad.append(str(exc))
        if bad:
            problems.append(
                f"{len(bad)} malformed result file(s) in {rs.path}:\n  " + "\n  ".join(bad)
            )
    if problems:
        raise ResultsError("\n".join(problems))


def _available_baselines() -> list[str]:
    """Names of the shipped baseline sets."""
    root = paths.baseline_sets_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / _BASELINE_INDEX).is_file())


def load_baselines(name: str = _BASELINE_PREFIX) -> list[ResultSet]:
    """The shipped baseline set ``name``, in the order of its index (the card's order)."""
    folder = paths.baseline_sets_dir() / name
    if not (folder / _BASELINE_INDEX).is_file():
        raise UnknownNameError("baseline set", name, _available_baselines())
    return load_results(folder)


def _load_baseline_folder(folder: Path) -> list[ResultSet]:
    index = _read_json(folder / _BASELINE_INDEX)
    models = index.get("models")
    if not isinstance(models, list) or not models:
        raise ResultsError(f"{folder / _BASELINE_INDEX}: expected a non-empty 'models' list")
    set_name = index.get("name", folder.name)
    sets = []
    for entry in models:
        subs = [folder / f for f in entry.get("folders") or [entry["folder"]]]
        for sub in subs:
            if not _has_task_files(sub):
                raise ResultsError(f"{sub}: baseline folder listed in the index holds no results")
        rs = _read_revision_folder(subs[0], source=set_name)
        # One model's results in several revision folders are read as one result set (what
        # mteb's leaderboard shows after ``join_revisions``); a task in two folders is an error.
        for sub in subs[1:]:
            for name, path in _task_files(sub).items():
                if name in rs.task_files:
                    raise ResultsError(f"{path}: task {name} is also in {rs.task_files[name]}")
                rs.task_files[name] = path
        if len(subs) > 1:
            rs.path = subs[0].parent
            rs.revision = entry.get("revision") or rs.revision
        rs.model = entry.get("model", rs.model)
        rs.label = entry.get("label") or rs.label
        rs.provenance = {k: v for k, v in entry.items() if k not in {"folder", "folders", "label"}}
        sets.append(rs)
    return sets


def load_remote(
    model: str, revision: str | None = None, cache_path: str | Path | None = None
) -> list[ResultSet]:
    """A model's results from mteb's results repository (needs internet): a git clone or
    update of it under the cache path (``ResultCache.download_from_remote``)."""
    import mteb

    cache = mteb.ResultCache(cache_path)
    try:
        cache.download_from_remote()
    except Exception as exc:  # noqa: BLE001 - git/network failures of every kind
        raise ResultsError(f"Could not download mteb's results repository: {exc}") from None
    folder = cache.remote_results_path / model.replace("/", "__").replace(" ", "_")
    if not folder.is_dir():
        raise ResultsError(f"mteb's results repository has no results for {model!r}")
    sets = load_results(folder, validate=False)
    for rs in sets:
        rs.source = "remote"
    if revision is not None:
        sets = [rs for rs in sets if rs.revision == revision]
        if not sets:
            raise ResultsError(f"mteb's results repository has no revision {revision!r} of {model}")
    return sets


def resolve(spec: str) -> list[ResultSet]:
    """Result sets named on the command line: a folder, a shipped baseline set (``published``),
    one of its models (``published:Linq-Embed-Mistral``, also by ``org/name``), or
    ``remote:<org/model>[@revision]`` (downloads mteb's results repository)."""
    kind, sep, name = spec.partition(":")
    if sep and kind == "remote":
        model, _, revision = name.partition("@")
        return load_remote(model, revision or None)
    if sep and kind in _available_baselines() and not Path(spec).exists():
        sets = load_baselines(kind)
        chosen = [rs for rs in sets if name in (rs.model, rs.label)]
        if not chosen:
            raise UnknownNameError(
                "model", name, [rs.model for rs in sets], where=f"baseline set {kind!r}"
            )
        return chosen
    if not sep and spec in _available_baselines() and not Path(spec).exists():
        return load_baselines(spec)
    return load_results(spec)


def resolve_one(spec: str, role: str) -> ResultSet:
    """Exactly one result set for ``spec``; ``role`` (``run``, ``reference``) names it in errors."""
    sets = resolve(spec)
    if len(sets) != 1:
        listing = "\n  ".join(f"{rs.ref}  ({rs.path})" for rs in sets)
        raise ResultsError(
            f"The {role} {spec!r} holds {len(sets)} result sets; point at one "
            f"<org__model>/<revision> folder or baseline model:\n  {listing}"
        )
    return sets[0]


__all__ = [
    "LEGACY_RUN_RECORD",
    "RUN_RECORD",
    "ResultSet",
    "load_baselines",
    "load_remote",
    "load_results",
    "read_run_record",
    "resolve",
    "resolve_one",
]
