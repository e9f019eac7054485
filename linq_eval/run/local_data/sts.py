"""STS tasks: the STS Benchmark release, or plain ``<split>.jsonl`` / ``<split>.csv``.

- STS Benchmark's release (``sts-{train,dev,test}.csv``): tab separated, no header, no quoting:
  genre, file, year, id, score, sentence1, sentence2 [, source columns].
- Plain: ``sentence1``, ``sentence2``, ``score`` (within the task's score range).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict
from mteb.abstasks import AbsTask

from linq_eval.run.local_data.files import (
    DataError,
    Problems,
    nonblank,
    number,
    plain_split_file,
    read_table,
    text,
    to_dataset,
)

_STS_BENCHMARK_FILES = {
    "train": "sts-train.csv",
    "validation": "sts-dev.csv",
    "dev": "sts-dev.csv",
    "test": "sts-test.csv",
}
"""Split name -> file of the original STS Benchmark release."""

_STS_BENCHMARK_COLUMNS = ("genre", "dataset", "year", "sid", "score", "sentence1", "sentence2")
"""The seven leading tab-separated fields of an STS Benchmark line (readme.txt; mteb's names)."""


def load_sts(task: AbsTask, folder: Path) -> DatasetDict:
    """``DatasetDict({split: Dataset(sentence1, sentence2, score, ...)})`` for the eval splits."""
    original = any((folder / name).is_file() for name in set(_STS_BENCHMARK_FILES.values()))
    low, high = float(task.min_score), float(task.max_score)
    splits = {}
    for split in task.eval_splits:
        if original:
            name = _STS_BENCHMARK_FILES.get(split)
            if name is None or not (folder / name).is_file():
                present = sorted(p.name for p in folder.glob("sts-*.csv"))
                raise DataError(
                    folder / (name or f"sts-{split}.csv"),
                    [(None, f"missing file: split {split!r} not found (present: {present})")],
                )
            splits[split] = _read_sts_benchmark(folder / name, split, low, high)
        else:
            path = plain_split_file(folder, split, "STS")
            splits[split] = _read_plain_sts(path, low, high)
    return DatasetDict(splits)


def _read_sts_benchmark(path: Path, split: str, low: float, high: float) -> Dataset:
    """One file of the STS Benchmark release: tab separated, no header, quotes are literal."""
    problems = Problems(path)
    columns: dict[str, list[Any]] = {c: [] for c in ("split", *_STS_BENCHMARK_COLUMNS)}
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        for lineno, fields in nonblank(path, problems, enumerate(reader, start=1)):
            if len(fields) < len(_STS_BENCHMARK_COLUMNS):
                problems.add(
                    lineno,
                    f"expected at least {len(_STS_BENCHMARK_COLUMNS)} tab-separated fields "
                    f"({' '.join(_STS_BENCHMARK_COLUMNS)}), got {len(fields)}",
                )
                continue
            row = dict(zip(_STS_BENCHMARK_COLUMNS, fields, strict=False))
            score, why = number(row["score"], low, high)
            if why:
                problems.add(lineno, why)
                continue
            columns["split"].append("dev" if split == "validation" else split)
            for c in _STS_BENCHMARK_COLUMNS:
                columns[c].append(score if c == "score" else row[c])
    problems.raise_if_any(None if columns["score"] else "no sentence pairs")
    return to_dataset(columns, **{c: "float64" if c == "score" else "string" for c in columns})


def _read_plain_sts(path: Path, low: float, high: float) -> Dataset:
    problems = Problems(path)
    columns: dict[str, list[Any]] = {"sentence1": [], "sentence2": [], "score": []}
    for lineno, row in read_table(path, ("sentence1", "sentence2", "score"), problems):
        s1, s2 = text(row["sentence1"]), text(row["sentence2"])
        score, why = number(row["score"], low, high)
        if s1 is None or s2 is None:
            problems.add(lineno, "sentence1 and sentence2 must be strings")
        elif why:
            problems.add(lineno, why)
        else:
            columns["sentence1"].append(s1)
            columns["sentence2"].append(s2)
            columns["score"].append(score)
    problems.raise_if_any(None if columns["score"] else "no sentence pairs")
    return to_dataset(columns, sentence1="string", sentence2="string", score="float64")


__all__ = ["load_sts"]
