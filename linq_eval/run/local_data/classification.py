"""Classification tasks: the PolyAI Banking77 release, or plain ``<split>.jsonl`` / ``.csv``.

- Banking77's release: ``train.csv`` / ``test.csv`` with ``text,category`` plus
  ``categories.json``; label ids as in the HF ``banking77`` dataset that mteb's copy keeps.
- Plain: ``text``, ``label`` (integers or strings, not both).

The eval splits and the train split (the classifier's training data) are read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict
from mteb.abstasks import AbsTask

from linq_eval.errors import did_you_mean
from linq_eval.run.local_data.files import (
    DataError,
    Problems,
    label,
    one_kind,
    plain_split_file,
    read_csv,
    read_table,
    text,
    to_dataset,
)


def load_classification(task: AbsTask, folder: Path) -> DatasetDict:
    """``DatasetDict({split: Dataset(text, label, ...)})`` for the eval and train splits."""
    needed = list(dict.fromkeys([*task.eval_splits, task.train_split]))
    categories = folder / "categories.json"
    splits = {}
    for split in needed:
        if categories.is_file():
            path = folder / f"{split}.csv"
            if not path.is_file():
                present = sorted(p.stem for p in folder.glob("*.csv"))
                raise DataError(
                    path,
                    [(None, f"missing file: split {split!r} not found (present: {present})")],
                )
            splits[split] = _read_category_csv(path, _category_ids(categories))
        else:
            splits[split] = _read_plain_classification(plain_split_file(folder, split, "labelled"))
    return DatasetDict(splits)


def _category_ids(path: Path) -> dict[str, int]:
    """Category name -> label id, as in the HF ``banking77`` dataset that mteb's copy keeps.

    HF's ClassLabel lists the names sorted case-insensitively (``Refund_not_showing_up`` sits
    between ``receiving_money`` and ``request_refund``), not in ``categories.json`` order.
    """
    try:
        names = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise DataError(path, [(e.lineno, f"not valid JSON ({e.msg})")]) from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DataError(path, [(1, "expected a JSON list of category names")])
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(path, [(None, f"duplicate category names: {', '.join(dupes)}")])
    return {name: i for i, name in enumerate(sorted(names, key=str.lower))}


def _read_category_csv(path: Path, ids: dict[str, int]) -> Dataset:
    problems = Problems(path)
    rows = read_csv(path, problems, ("text", "category"))
    columns: dict[str, list[Any]] = {"text": [], "label": [], "label_text": []}
    for lineno, row in rows:
        category = row["category"]
        if category not in ids:
            close = did_you_mean(category, ids, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.add(lineno, f"category {category!r} is not in categories.json{hint}")
        elif not row["text"].strip():
            problems.add(lineno, "empty text")
        else:
            columns["text"].append(row["text"])
            columns["label"].append(ids[category])
            columns["label_text"].append(category)
    problems.raise_if_any(None if columns["text"] else "no examples")
    return to_dataset(columns, text="string", label="int64", label_text="string")


def _read_plain_classification(path: Path) -> Dataset:
    problems = Problems(path)
    texts: list[str] = []
    labels: list[Any] = []
    for lineno, row in read_table(path, ("text", "label"), problems):
        body, value = text(row["text"]), label(row["label"], path.suffix == ".csv")
        if body is None:
            problems.add(lineno, "text must be a string")
        elif value is None:
            problems.add(lineno, f"label {row['label']!r} must be an integer or a string")
        else:
            texts.append(body)
            labels.append(value)
    label_type = one_kind(labels, problems, "labels")
    problems.raise_if_any(None if texts else "no examples")
    return to_dataset({"text": texts, "label": labels}, text="string", label=label_type)


__all__ = ["load_classification"]
