"""Reading local data files: JSONL and CSV rows with every problem reported as ``file:line``.

Files are UTF-8 (a leading byte-order mark, as Excel writes, is ignored). Every line holds a
row: a blank line between rows is a problem (a dropped row changes a score), blank lines after
the last row are skipped and counted (``counting_skipped_lines``); a JSON object with the same
key twice is a problem. A problem of one row
does not stop the reading: a file's problems are collected (``Problems``) and raised together as
one ``DataError``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, Value

from linq_eval.errors import DataError
from linq_eval.model.tokenization import needs_repair

_SPLIT_FILE_SUFFIXES = (".jsonl", ".csv")
"""A split of a plain table is ``<split>.jsonl`` or ``<split>.csv``."""

Rows = list[tuple[int, dict[str, Any]]]
"""(line number, row) pairs, in file order."""


@dataclass
class Problems:
    """Collects the problems of one file, to raise them together."""

    path: Path
    items: list[tuple[int | None, str]] = field(default_factory=list)

    def add(self, line: int | None, msg: str) -> None:
        self.items.append((line, msg))

    def raise_if_any(self, empty: str | None = None) -> None:
        """Raise the collected problems; ``empty`` is the problem when nothing was read."""
        if empty is not None and not self.items:
            self.items.append((None, empty))
        if self.items:
            raise DataError(self.path, self.items)


def not_utf8(folder: Path) -> DataError:
    """A DataError naming the first file under ``folder`` that is not UTF-8, and its line."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = raw.count(b"\n", 0, e.start) + 1
            column = e.start - raw.rfind(b"\n", 0, e.start)
            msg = f"not UTF-8 (byte 0x{raw[e.start]:02x} at column {column}); save it as UTF-8"
            return DataError(path, [(line, msg)])
    return DataError(folder, [(None, "a file is not UTF-8")])


def require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise DataError(path, [(None, f"missing file ({what})")])


_BLANK_LINE = (
    "blank line: every line holds a row (blank lines are allowed only after the last row); "
    "remove it or put the row back"
)


def nonblank(
    path: Path, problems: Problems, numbered: Iterable[tuple[int, Any]]
) -> Iterator[tuple[int, Any]]:
    """The ``(line number, line or fields)`` that hold a row. A blank line before a row is a
    problem (a dropped row would change the score silently); blank lines after the last row
    are skipped, and counted where a caller asked for it (``counting_skipped_lines``)."""
    pending: list[int] = []
    for lineno, item in numbered:
        if not (item.strip() if isinstance(item, str) else any(x.strip() for x in item)):
            pending.append(lineno)
            continue
        problems.items += [(blank, _BLANK_LINE) for blank in pending]
        pending.clear()
        yield lineno, item
    tally = _SKIPPED.get()
    if pending and tally is not None:
        tally[str(path)] = tally.get(str(path), 0) + len(pending)


_SKIPPED: ContextVar[dict[str, int] | None] = ContextVar("linq_eval_skipped", default=None)


@contextlib.contextmanager
def counting_skipped_lines() -> Iterator[dict[str, int]]:
    """Within the block, the blank lines skipped at the end of files: file -> count."""
    tally: dict[str, int] = {}
    token = _SKIPPED.set(tally)
    try:
        yield tally
    finally:
        _SKIPPED.reset(token)


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique (``json.loads`` would keep the last silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def read_jsonl(path: Path, problems: Problems) -> Rows:
    """(line number, object) per line; malformed lines, blank lines before a row and
    objects with a duplicate key go to ``problems``."""
    rows: Rows = []
    with path.open(encoding="utf-8-sig") as f:
        for lineno, line in nonblank(path, problems, enumerate(f, start=1)):
            try:
                obj = json.loads(line, object_pairs_hook=_unique_keys)
            except json.JSONDecodeError as e:
                problems.add(lineno, f"not valid JSON ({e.msg} at column {e.colno})")
                continue
            except _DuplicateKey as e:
                problems.add(lineno, f"duplicate key {e.args[0]!r} in one object")
                continue
            if not isinstance(obj, dict):
                problems.add(lineno, f"expected a JSON object, got {type(obj).__name__}")
                continue
            if "\\u" in line and _has_lone_surrogate(obj):
                problems.add(lineno, "a lone surrogate escape (\\ud800-\\udfff): not Unicode")
                continue
            rows.append((lineno, obj))
    return rows


def _has_lone_surrogate(value: Any) -> bool:
    """An escaped lone surrogate anywhere in the object: not Unicode text."""
    if isinstance(value, str):
        return needs_repair(value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def read_csv(path: Path, problems: Problems, required: Sequence[str]) -> Rows:
    """(line number, row) of an RFC-4180 CSV file whose header holds the required columns.

    Malformed rows go to ``problems``; a missing header or column raises at once.
    """
    rows: Rows = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(path, [(1, "empty file: expected a header line")]) from None
        except csv.Error as e:
            raise DataError(path, [(1, f"unreadable CSV ({e})")]) from None
        _check_columns(path, header, required, 1)

        def numbered() -> Iterator[tuple[int, list[str]]]:
            while True:
                start = reader.line_num + 1
                try:
                    yield start, next(reader)
                except StopIteration:
                    return
                except csv.Error as e:
                    problems.add(start, f"unreadable CSV ({e})")
                    return

        for lineno, row in nonblank(path, problems, numbered()):
            if len(row) != len(header):
                problems.add(
                    lineno, f"expected {len(header)} fields ({','.join(header)}), got {len(row)}"
                )
            else:
                rows.append((lineno, dict(zip(header, row, strict=True))))
    return rows


def _check_columns(path: Path, present: Sequence[str], required: Sequence[str], line: int) -> None:
    missing = [c for c in required if c not in present]
    if missing:
        raise DataError(
            path,
            [(line, f"missing column(s) {', '.join(missing)}; found: {', '.join(present) or '-'}")],
        )


def read_table(path: Path, required: Sequence[str], problems: Problems) -> Rows:
    """Rows of a plain ``.jsonl`` or ``.csv`` file holding the required columns."""
    if path.suffix == ".csv":
        return read_csv(path, problems, required)
    out = []
    for lineno, obj in read_jsonl(path, problems):
        missing = [c for c in required if c not in obj]
        if missing:
            problems.add(lineno, f"missing key(s) {', '.join(missing)}")
        else:
            out.append((lineno, obj))
    return out


def plain_split_file(folder: Path, split: str, kind: str) -> Path:
    """``<split>.jsonl`` or ``<split>.csv`` in ``folder``; errors list the splits present."""
    found = [folder / f"{split}{ext}" for ext in _SPLIT_FILE_SUFFIXES]
    found = [p for p in found if p.is_file()]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise DataError(folder, [(None, f"both {found[0].name} and {found[1].name}; keep one")])
    present = sorted({p.stem for p in folder.iterdir() if p.suffix in _SPLIT_FILE_SUFFIXES})
    msg = (
        f"missing file: split {split!r} not found for {kind} data (expected {split}.jsonl or "
        f"{split}.csv; splits present: {', '.join(present) or 'none'})"
    )
    raise DataError(folder / f"{split}.jsonl", [(None, msg)])


def text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def ident(value: Any) -> str | None:
    """A document or query id: a string, or an integer written as one."""
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def label(value: Any, from_csv: bool) -> int | str | None:
    """A class or cluster label: an integer or a string (CSV digits are integers)."""
    if from_csv and isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return value


def cell_list(value: Any, from_csv: bool) -> list[Any] | None:
    """A list-valued field: a JSON list, or in CSV a cell holding one (``["a", "b"]``)."""
    if from_csv and isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, list) else None


def number(raw: Any, low: float, high: float) -> tuple[float | None, str | None]:
    """``raw`` as a float within [low, high], or an explanation of why it is not usable."""
    if isinstance(raw, bool):
        return None, f"score {raw!r} is not a number"
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None, f"score {raw!r} is not a number"
    if not math.isfinite(value) or not low <= value <= high:
        return None, f"score {value:g} outside the task's range [{low:g}, {high:g}]"
    return value, None


def to_dataset(columns: dict[str, list[Any]], **types: Any) -> Dataset:
    """``columns`` as a Dataset, each of the given type: a ``Value`` name or a feature."""
    features = Features({c: Value(t) if isinstance(t, str) else t for c, t in types.items()})
    return Dataset.from_dict(columns, features=features)


def one_kind(values: Sequence[Any], problems: Problems, what: str) -> str:
    """The datasets dtype of ``values`` (int64 or string); mixing both is a problem."""
    kinds = {type(v) for v in values}
    if len(kinds) > 1:
        problems.add(None, f"{what} mix integers and strings")
    return "int64" if kinds == {int} else "string"


__all__ = [
    "Problems",
    "Rows",
    "cell_list",
    "counting_skipped_lines",
    "ident",
    "label",
    "nonblank",
    "not_utf8",
    "number",
    "one_kind",
    "plain_split_file",
    "read_csv",
    "read_jsonl",
    "read_table",
    "require_file",
    "text",
    "to_dataset",
]
