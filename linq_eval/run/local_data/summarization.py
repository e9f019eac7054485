"""Summarization tasks: ``<split>.jsonl`` (or ``.csv`` with JSON lists in the cells), one row
per source text with mteb's columns: ``text``, ``human_summaries`` (list of texts),
``machine_summaries`` (list of texts) and ``relevance`` (one score per machine summary, within
the task's score range).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, Sequence, Value
from mteb.abstasks import AbsTask

from linq_eval.run.local_data.files import (
    Problems,
    cell_list,
    number,
    plain_split_file,
    read_table,
    text,
    to_dataset,
)

_COLUMNS = ("text", "human_summaries", "machine_summaries", "relevance")
"""mteb's summarization columns."""


def load_summarization(task: AbsTask, folder: Path) -> DatasetDict:
    """``DatasetDict({split: Dataset(text, human_summaries, machine_summaries, relevance)})``."""
    low, high = float(task.min_score), float(task.max_score)
    return DatasetDict(
        {
            split: _read_summaries(plain_split_file(folder, split, "summarization"), low, high)
            for split in task.eval_splits
        }
    )


def _read_summaries(path: Path, low: float, high: float) -> Dataset:
    problems = Problems(path)
    from_csv = path.suffix == ".csv"
    columns: dict[str, list[Any]] = {c: [] for c in _COLUMNS}
    for lineno, row in read_table(path, _COLUMNS, problems):
        value, why = _row(row, from_csv, low, high)
        if why:
            problems.add(lineno, why)
            continue
        for column, v in zip(_COLUMNS, value, strict=True):
            columns[column].append(v)
    problems.raise_if_any(None if columns["text"] else "no texts")
    texts = Sequence(Value("string"))
    return to_dataset(
        columns,
        text="string",
        human_summaries=texts,
        machine_summaries=texts,
        relevance=Sequence(Value("float64")),
    )


def _row(row: dict[str, Any], from_csv: bool, low: float, high: float) -> tuple[Any, str | None]:
    body = text(row["text"])
    human = cell_list(row["human_summaries"], from_csv)
    machine = cell_list(row["machine_summaries"], from_csv)
    scores = cell_list(row["relevance"], from_csv)
    if body is None:
        return None, "text must be a string"
    for name, summaries in (("human_summaries", human), ("machine_summaries", machine)):
        if not summaries or not all(isinstance(s, str) for s in summaries):
            return None, f"{name} must be a non-empty list of texts"
    if scores is None or len(scores) != len(machine or []):
        return None, "relevance must be a list with one score per machine summary"
    values = []
    for raw in scores:
        value, why = number(raw, low, high)
        if why:
            return None, f"relevance: {why}"
        values.append(value)
    return (body, human, machine, values), None


__all__ = ["load_summarization"]
