"""Clustering tasks: ``<split>.jsonl`` / ``<split>.csv`` with mteb's ``sentences`` and ``labels``.

Two row shapes, as mteb's own clustering datasets have them (not mixed in one file):

- one text per row: ``sentences`` a text, ``labels`` its cluster (an integer or a string; for a
  hierarchical task, a list: the cluster at each level);
- one clustering set per row (mteb 1's layout, which the ``.v2`` tasks regroup): ``sentences`` a
  list of texts, ``labels`` the list of their clusters (in CSV, cells holding JSON lists).

Tasks whose hub data comes in sets (every mteb 1 clustering task, and the ``.v2`` tasks that
read the same data) take a file of single texts as one set; a task whose hub data holds one text
per row refuses sets.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import mteb
from datasets import Dataset, DatasetDict, Sequence, Value
from mteb.abstasks import AbsTask, AbsTaskClusteringLegacy

from linq_eval.run.local_data.files import (
    DataError,
    Problems,
    cell_list,
    label,
    one_kind,
    plain_split_file,
    read_table,
    text,
    to_dataset,
)

_COLUMNS = ("sentences", "labels")
"""mteb's clustering columns."""


def load_clustering(task: AbsTask, folder: Path) -> DatasetDict:
    """``DatasetDict({split: Dataset(sentences, labels)})`` in the shape of the task's hub data."""
    sets = reads_sets(task)
    splits = {}
    for split in task.eval_splits:
        path = plain_split_file(folder, split, "clustering")
        rows, grouped = _read_rows(path)
        if grouped and not sets:
            msg = (
                f"one clustering set per row, but mteb's data for {task.metadata.name} holds one "
                "text per row: write one text per line (sentences: a text, labels: its cluster)"
            )
            raise DataError(path, [(None, msg)])
        if sets and not grouped:
            rows = [([s for s, _ in rows], [lab for _, lab in rows])]
        splits[split] = _dataset(rows, sets or grouped, path)
    return DatasetDict(splits)


def reads_sets(task: AbsTask) -> bool:
    """Whether the task's hub data holds clustering sets (mteb 1's layout) rather than texts."""
    legacy = isinstance(task, AbsTaskClusteringLegacy)
    return legacy or task.metadata.dataset.get("path") in _legacy_paths()


@functools.cache
def _legacy_paths() -> frozenset[str]:
    """Dataset paths read by mteb 1's clustering tasks, whose hub data comes in sets."""
    tasks = mteb.get_tasks(task_types=["Clustering"], exclude_superseded=False)
    return frozenset(
        str(t.metadata.dataset.get("path")) for t in tasks if isinstance(t, AbsTaskClusteringLegacy)
    )


def _read_rows(path: Path) -> tuple[list[tuple[Any, Any]], bool]:
    """(sentences, labels) per row, and whether the rows are sets (lists) or single texts."""
    problems = Problems(path)
    from_csv = path.suffix == ".csv"
    rows: list[tuple[Any, Any]] = []
    shapes: set[bool] = set()
    for lineno, row in read_table(path, _COLUMNS, problems):
        texts = cell_list(row["sentences"], from_csv)
        if texts is not None:
            labels = cell_list(row["labels"], from_csv)
            why = _set_problem(texts, labels)
            value: Any = (texts, [label(x, False) for x in labels or []])
        else:
            value, why = _single(row, from_csv)
        if why:
            problems.add(lineno, why)
            continue
        shapes.add(texts is not None)
        rows.append(value)
    if len(shapes) > 1:
        problems.add(None, "rows mix single texts and lists of texts (sets); use one shape")
    problems.raise_if_any(None if rows else "no texts")
    return rows, shapes == {True}


def _set_problem(texts: list[Any], labels: list[Any] | None) -> str | None:
    if labels is None:
        return "sentences is a list (a clustering set), so labels must be a list too"
    if len(labels) != len(texts):
        return f"{len(texts)} sentences but {len(labels)} labels"
    if not texts:
        return "empty clustering set"
    if not all(isinstance(t, str) for t in texts):
        return "sentences must be texts"
    if any(label(x, False) is None for x in labels):
        return "labels must be integers or strings"
    return None


def _single(row: dict[str, Any], from_csv: bool) -> tuple[Any, str | None]:
    body = text(row["sentences"])
    if body is None:
        return None, "sentences must be a text (or a list of texts: a clustering set)"
    levels = cell_list(row["labels"], from_csv)
    if levels is not None:  # a hierarchical label: the cluster at each level
        if not levels or any(label(x, False) is None for x in levels):
            return None, "a list of labels (one per level) must hold integers or strings"
        return (body, [label(x, False) for x in levels]), None
    value = label(row["labels"], from_csv)
    if value is None:
        return None, f"label {row['labels']!r} must be an integer or a string"
    return (body, value), None


def _dataset(rows: list[tuple[Any, Any]], nested: bool, path: Path) -> Dataset:
    problems = Problems(path)
    labels = [lab for _, lab in rows]
    flat = [x for lab in labels for x in (lab if isinstance(lab, list) else [lab])]
    kind = Value(one_kind(flat, problems, "labels"))
    problems.raise_if_any()
    listed = nested or any(isinstance(lab, list) for lab in labels)
    if listed:
        labels = [lab if isinstance(lab, list) else [lab] for lab in labels]
    return to_dataset(
        {"sentences": [s for s, _ in rows], "labels": labels},
        sentences=Sequence(Value("string")) if nested else "string",
        labels=Sequence(kind) if listed else kind,
    )


__all__ = ["load_clustering", "reads_sets"]
