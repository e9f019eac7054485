"""Pair classification tasks: ``<split>.jsonl`` / ``<split>.csv`` with ``sentence1``,
``sentence2`` and ``labels`` (1: the pair belongs together, 0: it does not).

That is the layout mteb evaluates. Its hub datasets for these tasks come in many layouts
(``sent1``/``sent2``, premise/hypothesis with three labels, one row holding every pair), which
each task's ``dataset_transform`` maps to it; a local file is already in the evaluated layout, so
that transform is not run (for the English MTEB tasks it only renames ``sent1``/``sent2``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict
from mteb.abstasks import AbsTask

from linq_eval.run.local_data.files import (
    Problems,
    label,
    plain_split_file,
    read_table,
    text,
    to_dataset,
)

_COLUMNS = ("sentence1", "sentence2", "labels")
"""mteb's pair-classification columns."""


def load_pair_classification(task: AbsTask, folder: Path) -> DatasetDict:
    """``DatasetDict({split: Dataset(sentence1, sentence2, labels)})``, one row per pair."""
    return DatasetDict(
        {
            split: _read_pairs(plain_split_file(folder, split, "pair classification"))
            for split in task.eval_splits
        }
    )


def _read_pairs(path: Path) -> Dataset:
    problems = Problems(path)
    columns: dict[str, list[Any]] = {c: [] for c in _COLUMNS}
    for lineno, row in read_table(path, _COLUMNS, problems):
        s1, s2 = text(row["sentence1"]), text(row["sentence2"])
        value = label(row["labels"], path.suffix == ".csv")
        if s1 is None or s2 is None:
            problems.add(lineno, "sentence1 and sentence2 must be strings")
        elif value not in (0, 1):
            problems.add(lineno, f"label {row['labels']!r} must be 0 or 1")
        else:
            for column, v in zip(_COLUMNS, (s1, s2, value), strict=True):
                columns[column].append(v)
    present = set(columns["labels"])
    if not problems.items and columns["labels"] and present != {0, 1}:
        problems.add(None, f"only label {present.pop()}: average precision needs pairs of both")
    problems.raise_if_any(None if columns["labels"] else "no pairs")
    return to_dataset(columns, sentence1="string", sentence2="string", labels="int64")


__all__ = ["load_pair_classification"]
