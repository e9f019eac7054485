"""Writing mteb result folders for tests, with mteb's own classes and ResultCache layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from linq_eval import __version__
from linq_eval.registry import registry
from linq_eval.results.per_query import (
    EvidencePart,
    QueryEvidence,
    TaskEvidence,
    bind,
    write_evidence,
)
from linq_eval.results.reading import RUN_RECORD
from linq_eval.results.tables import get_benchmark_spec


def write_results(
    root: Path,
    model: str,
    revision: str,
    scores: dict[str, Any],
    settings: dict[str, Any] | None = None,
    extra: dict[str, dict[str, float]] | None = None,
    *,
    task_settings: dict[str, Any] | None = None,
) -> Path:
    """Write mteb TaskResult files under ``root/results/<org__model>/<revision>``.

    ``scores`` maps a task to its main score as a fraction (for the MTEB(eng, v1) split and
    subsets) or to ``{split: {subset: fraction}}``; ``extra`` adds other fields to every score
    entry of a task (``{"SprintDuplicateQuestions": {"cosine_ap": 0.96}}``); ``settings``
    writes a run record, with ``task_settings`` as every task's own settings. Returns the
    ``<org__model>/<revision>`` folder.
    """
    import mteb

    spec = get_benchmark_spec()
    cache = mteb.ResultCache(cache_path=root)
    folder = root / "results" / model.replace("/", "__") / revision
    for name, value in scores.items():
        task = mteb.get_task(name)
        if not isinstance(value, dict):
            bench_task = spec.task(name) if name in {t.name for t in spec.tasks} else None
            splits = bench_task.eval_splits if bench_task else tuple(task.eval_splits)
            subsets = bench_task.hf_subsets if bench_task else tuple(task.hf_subsets)
            value = {split: dict.fromkeys(subsets, value) for split in splits}
        main = task.metadata.main_score
        fields = (extra or {}).get(name, {})
        result = mteb.TaskResult.from_task_results(
            task,
            {
                split: {sub: {**fields, main: v, "main_score": v} for sub, v in subs.items()}
                for split, subs in value.items()
            },
            evaluation_time=1.0,
        )
        cache.save_to_cache(result, model_name=model, model_revision=revision)
    if settings is not None or task_settings is not None:
        tasks = {name: {"settings": task_settings} for name in scores} if task_settings else {}
        record = {
            "linq_eval_version": __version__,
            "settings": settings or task_settings,
            "tasks": tasks,
            "device": "cpu",
        }
        (folder / RUN_RECORD).parent.mkdir(exist_ok=True)
        (folder / RUN_RECORD).write_text(json.dumps(record), encoding="utf-8")
    return folder


def write_bound_evidence(
    folder: Path, evidence: TaskEvidence, settings: dict[str, Any] | None = None
) -> Path:
    """Write ``evidence`` beside ``<folder>/<task>.json``, bound to that file and to
    ``settings`` (the task's score settings: those its run record keeps, if any), as a run
    writes it."""
    evidence.binding = bind(folder / f"{evidence.task}.json", settings or {}, evidence)
    return write_evidence(folder, evidence)


def nano_run(root: Path, scores: dict[str, np.ndarray]) -> Path:
    """A run folder of NanoBEIR tasks (task -> per-query scores): each task's result the mean
    of its queries, its evidence the queries, bound to it (as a run writes both)."""
    tasks = {t.name: t for t in registry().benchmark("NanoBEIR").tasks}
    values = {task: float(s.mean()) for task, s in scores.items()}
    folder = write_results(root, "org/model", "rev", values)
    for task, per_query in scores.items():
        (split,), (subset,) = tasks[task].eval_splits, tasks[task].hf_subsets
        queries = {
            f"q{i}": QueryEvidence(f"{task} query {i}", float(s), (f"d{i}",))
            for i, s in enumerate(per_query)
        }
        write_bound_evidence(
            folder, TaskEvidence(task, [EvidencePart(subset, split, "ndcg_at_10", queries)])
        )
    return root
