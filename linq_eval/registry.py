"""mteb's task and benchmark registry as data: what linq-eval reads of it, kept once per mteb
version.

Importing mteb takes about 5 seconds (scikit-learn, scipy, datasets and its task registry), more
than a command that only checks names, plans a run, prints prompts, tables or compares results
should take. Those commands read this snapshot instead: per task its type, main score, splits,
language subsets, parent tasks (``adapted_from``), successor, subtasks, prompt types, dataset
and descriptive-statistics file; per benchmark its tasks with the splits and subsets it scores.
The snapshot is made from mteb's own objects the first time it is needed for an installed mteb
version and kept in linq-eval's user cache (``mteb-registry/mteb-<version>.json``, written
atomically); ``tests/test_registry.py`` checks it field by field against mteb.

Commands that evaluate still use mteb's task objects (``linq_eval.benchmarks.mteb_tasks``); this
module never imports mteb except to build the snapshot.

    from linq_eval.registry import registry
    reg = registry()
    reg.task("NanoSciFactRetrieval").adapted_from     # ('SciFact',)
    [t.name for t in reg.benchmark("MTEB(eng, v1)").tasks][:2]
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

from linq_eval.errors import ConfigError, UnknownNameError, did_you_mean
from linq_eval.paths import user_cache_dir
from linq_eval.provenance import MTEB_DISTRIBUTIONS, mteb_distribution_problem, mteb_version

_FORMAT = 1
"""Version of the snapshot's layout: a snapshot of another layout is made again."""


@dataclass(frozen=True)
class TaskInfo:
    """One mteb task as linq-eval reads it: metadata, with a benchmark's filters applied."""

    name: str
    type: str
    """mteb task type (Retrieval, STS ...)."""
    main_score: str
    """The metric mteb reports as the task's main score (ndcg_at_10, cosine_spearman ...)."""
    eval_splits: tuple[str, ...]
    """Evaluation splits (a benchmark's, where it narrows them)."""
    hf_subsets: tuple[str, ...]
    """Language subsets (a benchmark's, where it narrows them)."""
    adapted_from: tuple[str, ...] = ()
    """The tasks mteb says this one is adapted from (NanoSciFactRetrieval: SciFact)."""
    superseded_by: str | None = None
    """The task mteb says supersedes this one."""
    subtasks: tuple[str, ...] = ()
    """An aggregate task's subtasks (CQADupstackRetrieval's subforums); empty otherwise."""
    ranked: bool = False
    """Evaluated as retrieval, ranking documents per query (mteb 2 evaluates reranking so):
    such tasks get per-query evidence."""
    query_prompt: str | None = None
    """The prompt type mteb encodes the query side with (``query``; None for one input)."""
    document_prompt: str | None = None
    """The prompt type of the document side (``document``; None)."""
    dataset_path: str | None = None
    """The hub dataset the task reads."""
    dataset_revision: str | None = None
    stats_file: str | None = None
    """mteb's descriptive statistics of the task, relative to the mteb package folder."""
    few_shot: tuple[int, int] | None = None
    """A classification task's training draw: samples per label and experiments."""

    @property
    def is_aggregate(self) -> bool:
        return bool(self.subtasks)

    def narrowed(self, eval_splits: tuple[str, ...], hf_subsets: tuple[str, ...]) -> TaskInfo:
        """The task with a benchmark's splits and subsets."""
        return replace(self, eval_splits=eval_splits, hf_subsets=hf_subsets)


@dataclass(frozen=True)
class BenchmarkInfo:
    """One mteb benchmark: its tasks, each with the splits and subsets it scores."""

    name: str
    """The benchmark's name as mteb spells it."""
    aliases: tuple[str, ...]
    """Other names mteb accepts for it."""
    tasks: tuple[TaskInfo, ...]
    """Its tasks, in mteb's order, narrowed to the benchmark's splits and subsets."""


@dataclass(frozen=True)
class Registry:
    """Every task and benchmark of one mteb version."""

    mteb_version: str
    """The mteb version the snapshot was made from."""
    tasks: Mapping[str, TaskInfo]
    """Task name -> the task as mteb registers it (superseded, private and beta included)."""
    benchmarks: Mapping[str, BenchmarkInfo]
    """Benchmark name -> the benchmark."""

    def task(self, name: str) -> TaskInfo:
        """A task by exact name; an unknown one raises with the closest names."""
        try:
            return self.tasks[name]
        except KeyError:
            raise UnknownNameError("task", name, self.tasks) from None

    def benchmark(self, name: str) -> BenchmarkInfo:
        """A benchmark by name or alias; an unknown one raises with the closest names."""
        if name in self.benchmarks:
            return self.benchmarks[name]
        for bench in self.benchmarks.values():
            if name in bench.aliases:
                return bench
        raise UnknownNameError("benchmark", name, self.benchmarks)

    def lineage(self, name: str) -> list[str]:
        """The tasks ``name`` derives from, nearest first: those mteb says it is adapted from
        and those it supersedes, then theirs (NanoSciFactRetrieval: SciFact)."""
        found: list[str] = []
        frontier = [name]
        while frontier:
            parents = [p for n in frontier for p in self._parents(n) if p not in found]
            parents = [p for p in dict.fromkeys(parents) if p != name]
            found += parents
            frontier = parents
        return found

    def _parents(self, name: str) -> list[str]:
        task = self.tasks.get(name)
        adapted = list(task.adapted_from) if task else []
        return adapted + self._superseded.get(name, [])

    @functools.cached_property
    def _superseded(self) -> dict[str, list[str]]:
        """Task -> the tasks it supersedes."""
        out: dict[str, list[str]] = {}
        for task in self.tasks.values():
            if task.superseded_by:
                out.setdefault(task.superseded_by, []).append(task.name)
        return out

    def suggest(self, name: str, choices: Sequence[str]) -> list[str]:
        """The names of ``choices`` closest to ``name``: the tasks it derives from first, then
        those spelled alike (``errors.Suggest``)."""
        related = [t for t in self.lineage(name) if t in set(choices)]
        return list(dict.fromkeys([*related, *did_you_mean(name, choices)]))[:3]


def _mteb_folder() -> Path | None:
    """The installed mteb package's folder, found from its distribution's metadata (mteb is
    not imported)."""
    for dist in MTEB_DISTRIBUTIONS:
        with contextlib.suppress(PackageNotFoundError):
            return Path(str(distribution(dist).locate_file("mteb")))
    return None


def descriptive_stats(task: TaskInfo) -> dict[str, Any] | None:
    """mteb's descriptive statistics of a task (its own JSON file, read without importing
    mteb), or None when mteb ships none."""
    folder = _mteb_folder()
    if task.stats_file is None or folder is None:
        return None
    path = folder / task.stats_file
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


@contextlib.contextmanager
def quiet_mteb() -> Iterator[None]:
    """Silence mteb's notes about beta and superseded tasks while reading its registry."""
    logger = logging.getLogger("mteb")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


# --------------------------------------------------------------------------- building


def _prompt_type(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def task_info(task: Any) -> TaskInfo:
    """What linq-eval reads of one mteb task object (with the filters it carries)."""
    from mteb.abstasks import AbsTaskClassification, AbsTaskRetrieval

    meta = task.metadata
    subtasks = tuple(t.metadata.name for t in meta.tasks) if task.is_aggregate else ()
    leaf = meta.tasks[0] if task.is_aggregate else task
    ranked = isinstance(leaf, AbsTaskRetrieval)
    prompts = (
        ("query", "document")
        if ranked
        else tuple(_prompt_type(getattr(leaf, f"input{i}_prompt_type", None)) for i in (1, 2))
    )
    folder = _mteb_folder()
    stats = Path(meta.descriptive_stat_path)
    in_package = folder is not None and stats.is_relative_to(folder)
    few_shot = None
    if isinstance(task, AbsTaskClassification):
        few_shot = (int(task.samples_per_label), int(task.n_experiments))
    dataset = meta.dataset or {}
    return TaskInfo(
        name=meta.name,
        type=meta.type,
        main_score=meta.main_score,
        eval_splits=tuple(task.eval_splits),
        hf_subsets=tuple(task.hf_subsets),
        adapted_from=tuple(meta.adapted_from or ()),
        superseded_by=meta.superseded_by,
        subtasks=subtasks,
        ranked=ranked,
        query_prompt=prompts[0],
        document_prompt=prompts[1],
        dataset_path=dataset.get("path"),
        dataset_revision=dataset.get("revision"),
        stats_file=str(stats.relative_to(folder)) if in_package else None,
        few_shot=few_shot,
    )


def _build() -> Registry:
    """The snapshot, made from mteb's own registry (imports mteb: seconds)."""
    import mteb

    with quiet_mteb():
        tasks = mteb.get_tasks(
            exclude_superseded=False,
            exclude_aggregate=False,
            exclude_private=False,
            exclude_beta=False,
        )
        infos = {t.metadata.name: task_info(t) for t in tasks}
        benchmarks = {}
        for bench in mteb.get_benchmarks():
            members = []
            for t in bench.tasks:
                base = infos.setdefault(t.metadata.name, task_info(t))
                members.append(base.narrowed(tuple(t.eval_splits), tuple(t.hf_subsets)))
            benchmarks[bench.name] = BenchmarkInfo(
                bench.name, tuple(bench.aliases or ()), tuple(members)
            )
    return Registry(str(mteb.__version__), infos, benchmarks)


# --------------------------------------------------------------------------- storing


def _encode(reg: Registry) -> dict[str, Any]:
    tasks = {name: asdict(t) for name, t in reg.tasks.items()}
    benchmarks = {
        b.name: {
            "aliases": list(b.aliases),
            "tasks": [[t.name, list(t.eval_splits), list(t.hf_subsets)] for t in b.tasks],
        }
        for b in reg.benchmarks.values()
    }
    return {"format": _FORMAT, "mteb": reg.mteb_version, "tasks": tasks, "benchmarks": benchmarks}


def _decode(data: Mapping[str, Any]) -> Registry:
    tasks = {}
    for name, raw in data["tasks"].items():
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        tasks[name] = TaskInfo(**values)
    benchmarks = {
        name: BenchmarkInfo(
            name,
            tuple(raw["aliases"]),
            tuple(
                tasks[t].narrowed(tuple(splits), tuple(subsets))
                for t, splits, subsets in raw["tasks"]
            ),
        )
        for name, raw in data["benchmarks"].items()
    }
    return Registry(data["mteb"], tasks, benchmarks)


def snapshot_path(mteb_version: str) -> Path:
    """Where the snapshot of an mteb version is kept."""
    return user_cache_dir() / "mteb-registry" / f"mteb-{mteb_version}.json"


@functools.lru_cache(maxsize=1)
def registry() -> Registry:
    """The registry of the installed mteb: the kept snapshot, or one made now and kept."""
    found = mteb_version()
    if found is None:
        raise ConfigError("mteb is not installed: pip install linq-eval (it brings mteb-core).")
    problem = mteb_distribution_problem()
    if problem:
        raise ConfigError(problem)
    path = snapshot_path(found)
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") == _FORMAT and data.get("mteb") == found:
            return _decode(data)
    reg = _build()
    with contextlib.suppress(OSError):  # an unwritable cache only costs time
        from linq_eval.atomic import atomic_write_text

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(_encode(reg), separators=(",", ":")))
    return reg


__all__ = [
    "BenchmarkInfo",
    "Registry",
    "TaskInfo",
    "descriptive_stats",
    "quiet_mteb",
    "registry",
    "snapshot_path",
    "task_info",
]
