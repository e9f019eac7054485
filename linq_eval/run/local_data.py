"""Feed mteb's registered tasks from local files, so runs work offline with the real task names.

A task is matched to a subfolder of a data directory (``find_task_dir``) and its ``dataset`` is
filled in the structure mteb's own ``load_data`` produces (``load_local_task``); mteb then
evaluates and names the results exactly as for the hub data.

Formats understood, per task type:

- Retrieval: a BEIR folder: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
  (``_id``, ``text``) and ``qrels/<split>.tsv`` (header ``query-id corpus-id score``).
- STS: the STS Benchmark release (``sts-{train,dev,test}.csv``: tab separated, no header, no
  quoting: genre, file, year, id, score, sentence1, sentence2 [, source columns]), or a plain
  ``<split>.jsonl`` / ``<split>.csv`` with ``sentence1``, ``sentence2``, ``score``.
- Classification: the PolyAI Banking77 release (``train.csv`` / ``test.csv`` with
  ``text,category`` plus ``categories.json``), or a plain ``<split>.jsonl`` / ``<split>.csv`` with
  ``text``, ``label``.

Every problem in a file is reported at once, as a ``DataError`` naming the file and line.
Files are UTF-8 (a leading byte-order mark, as Excel writes, is ignored).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linq_eval.errors import ConfigError, UnknownNameError, did_you_mean
from linq_eval.model.tokenization import needs_repair

if TYPE_CHECKING:
    from datasets import Dataset
    from mteb.abstasks.abstask import AbsTask

logger = logging.getLogger(__name__)

MAX_REPORTED = 20
"""At most this many problems of one file are spelled out in an error message."""

STS_BENCHMARK_FILES = {
    "train": "sts-train.csv",
    "validation": "sts-dev.csv",
    "dev": "sts-dev.csv",
    "test": "sts-test.csv",
}
"""Split name -> file of the original STS Benchmark release."""

STS_BENCHMARK_COLUMNS = ("genre", "dataset", "year", "sid", "score", "sentence1", "sentence2")
"""The seven leading tab-separated fields of an STS Benchmark line (readme.txt; mteb's names)."""

SUPPORTED_TYPES = ("Retrieval", "STS", "Classification")
"""The mteb task types that can be fed from local files."""


class DataError(ConfigError):
    """A local data file that cannot be used: names the file and the line of each problem."""

    def __init__(self, path: Path, problems: Sequence[tuple[int | None, str]]) -> None:
        self.path = Path(path)
        self.problems = list(problems)
        self.line = self.problems[0][0] if self.problems else None
        shown = [
            f"{self.path}:{line}: {msg}" if line is not None else f"{self.path}: {msg}"
            for line, msg in self.problems[:MAX_REPORTED]
        ]
        if len(self.problems) > MAX_REPORTED:
            shown.append(f"... and {len(self.problems) - MAX_REPORTED} more problems")
        if len(shown) == 1:
            msg = shown[0]
        else:
            msg = f"{len(self.problems)} problems in {self.path}:\n  " + "\n  ".join(shown)
        super().__init__(msg)


class _Problems:
    """Collects the problems of one file, to raise them together."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[tuple[int | None, str]] = []

    def add(self, line: int | None, msg: str) -> None:
        self.items.append((line, msg))

    def raise_if_any(self) -> None:
        if self.items:
            raise DataError(self.path, self.items)


# --------------------------------------------------------------------------- matching a folder


def find_task_dir(task_name: str, data_dir: Path) -> Path | None:
    """The subfolder of ``data_dir`` holding the data of the registered mteb task ``task_name``.

    A folder matches, case-insensitively, when named like the task (``SciFact``) or like the last
    component of the task's mteb dataset path, without a ``-sts`` suffix (``mteb/scifact`` ->
    ``scifact``, ``mteb/stsbenchmark-sts`` -> ``stsbenchmark``). A folder named like the task wins
    over one named like the dataset. A revised task that shares its dataset path with the task it
    was adapted from (``Banking77Classification.v2``) only matches its own name, since a folder
    named after the dataset holds the original version. None when nothing matches.
    """
    return _find_dir(_registered_task(task_name), Path(data_dir))


def load_local_task(task: AbsTask, data_dir: Path) -> bool:
    """Fill ``task.dataset`` from the folder of ``data_dir`` that matches the task.

    Returns False, touching nothing, when no folder matches. Otherwise loads the task's eval
    splits (and a classification task's train split) in the structure mteb's ``load_data``
    produces, sets ``task.data_loaded`` and returns True. Raises ``DataError`` for a bad file and
    ``ConfigError`` for a task that cannot be fed from local files.
    """
    folder = _find_dir(task, Path(data_dir))
    if folder is None:
        return False
    _check_loadable(task, folder)
    loader = _LOADERS[task.metadata.type]
    try:
        task.dataset = loader(task, folder)
    except UnicodeDecodeError:
        raise _not_utf8(folder) from None
    task.data_loaded = True
    logger.info("Loaded %s from %s", task.metadata.name, folder)
    return True


def _registered_task(task_name: str) -> AbsTask:
    import mteb

    try:
        return mteb.get_task(task_name)
    except KeyError:
        names = [t.metadata.name for t in mteb.get_tasks(exclude_superseded=False)]
        raise UnknownNameError("task", task_name, names) from None


def _dataset_folder_names(task: AbsTask) -> set[str]:
    """Folder names (lower case) that stand for the task's mteb dataset path."""
    path = str(task.metadata.dataset.get("path") or "").rstrip("/")
    if not path or not _path_is_own(task):
        return set()
    last = path.rsplit("/", 1)[-1].lower()
    names = {last}
    if last.endswith("-sts"):
        names.add(last.removesuffix("-sts"))
    return names


def _path_is_own(task: AbsTask) -> bool:
    """False when the task revises a task it was adapted from, on the same dataset path."""
    import mteb

    path = task.metadata.dataset.get("path")
    for name in task.metadata.adapted_from or []:
        try:
            original = mteb.get_task(name)
        except KeyError:
            continue
        if original.metadata.dataset.get("path") == path:
            return False
    return True


def _find_dir(task: AbsTask, data_dir: Path) -> Path | None:
    if not data_dir.is_dir():
        raise ConfigError(f"Data directory {data_dir} does not exist or is not a directory.")
    folders = sorted(p for p in data_dir.iterdir() if p.is_dir())
    name = task.metadata.name.lower()
    dataset_names = _dataset_folder_names(task)
    for wanted, how in (({name}, "task name"), (dataset_names, "dataset path")):
        hits = [p for p in folders if p.name.lower() in wanted]
        if len(hits) > 1:
            listed = ", ".join(p.name for p in hits)
            raise ConfigError(
                f"Several folders in {data_dir} match task {task.metadata.name} by {how}: "
                f"{listed}. Keep one."
            )
        if hits:
            return hits[0]
    return None


def _check_loadable(task: AbsTask, folder: Path) -> None:
    """Refuse tasks whose hub data mteb reshapes in ways a local copy would not reproduce."""
    from mteb.abstasks import AbsTaskClassification, AbsTaskRetrieval, AbsTaskSTS
    from mteb.abstasks.abstask import AbsTask

    meta = task.metadata
    bases = {
        "Retrieval": AbsTaskRetrieval,
        "STS": AbsTaskSTS,
        "Classification": AbsTaskClassification,
    }
    base = bases.get(meta.type)
    if base is None or not isinstance(task, base):
        raise ConfigError(
            f"Folder {folder} matches task {meta.name}, but local data is supported for "
            f"{', '.join(SUPPORTED_TYPES)} tasks only (this one is {meta.type})."
        )
    if meta.is_multilingual or list(task.hf_subsets) != ["default"]:
        raise ConfigError(
            f"Folder {folder} matches task {meta.name}, whose data comes in subsets "
            f"({', '.join(task.hf_subsets)}); local data supports single-subset tasks only."
        )
    cls = type(task)
    if cls.dataset_transform is not AbsTask.dataset_transform:
        raise ConfigError(
            f"Task {meta.name} reshapes its hub data after loading (dataset_transform, e.g. "
            "subsampling), which local files would skip and so change its scores; "
            "load it from the hub instead."
        )
    if cls.load_data is not base.load_data and cls.load_data is not AbsTask.load_data:
        raise ConfigError(
            f"Task {meta.name} has its own load_data, which local files cannot reproduce; "
            "load it from the hub instead."
        )
    if isinstance(task, AbsTaskClassification) and task.is_cross_validation:
        raise ConfigError(f"Task {meta.name} uses cross-validation; not supported locally.")


# --------------------------------------------------------------------------- readers


def _not_utf8(folder: Path) -> DataError:
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


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise DataError(path, [(None, f"missing file ({what})")])


def _read_jsonl(path: Path, problems: _Problems) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) per non-blank line; malformed lines go to ``problems``."""
    rows: list[tuple[int, dict[str, Any]]] = []
    with path.open(encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                problems.add(lineno, f"not valid JSON ({e.msg} at column {e.colno})")
                continue
            if not isinstance(obj, dict):
                problems.add(lineno, f"expected a JSON object, got {type(obj).__name__}")
                continue
            if "\\u" in line and any(  # an escaped lone surrogate: not Unicode text
                isinstance(v, str) and needs_repair(v) for v in obj.values()
            ):
                problems.add(lineno, "a lone surrogate escape (\\ud800-\\udfff): not Unicode")
                continue
            rows.append((lineno, obj))
    return rows


def _read_csv(
    path: Path, problems: _Problems, required: Sequence[str]
) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of an RFC-4180 CSV file whose header holds the required columns.

    Malformed rows go to ``problems``; a missing header or column raises at once.
    """
    rows: list[tuple[int, dict[str, str]]] = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(path, [(1, "empty file: expected a header line")]) from None
        except csv.Error as e:
            raise DataError(path, [(1, f"unreadable CSV ({e})")]) from None
        _check_columns(path, header, required, 1)
        start = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                problems.add(start, f"unreadable CSV ({e})")
                break
            if row and any(cell.strip() for cell in row):
                if len(row) != len(header):
                    problems.add(
                        start, f"expected {len(header)} fields ({','.join(header)}), got {len(row)}"
                    )
                else:
                    rows.append((start, dict(zip(header, row, strict=True))))
            start = reader.line_num + 1
    return rows


def _check_columns(path: Path, present: Sequence[str], required: Sequence[str], line: int) -> None:
    missing = [c for c in required if c not in present]
    if missing:
        raise DataError(
            path,
            [(line, f"missing column(s) {', '.join(missing)}; found: {', '.join(present) or '-'}")],
        )


def _read_table(
    path: Path, required: Sequence[str], problems: _Problems
) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a plain ``.jsonl`` or ``.csv`` file holding the required columns."""
    if path.suffix == ".csv":
        return _read_csv(path, problems, required)
    out = []
    for lineno, obj in _read_jsonl(path, problems):
        missing = [c for c in required if c not in obj]
        if missing:
            problems.add(lineno, f"missing key(s) {', '.join(missing)}")
        else:
            out.append((lineno, obj))
    return out


def _plain_split_file(folder: Path, split: str, kind: str) -> Path:
    """``<split>.jsonl`` or ``<split>.csv`` in ``folder``; errors list the splits present."""
    found = [folder / f"{split}{ext}" for ext in (".jsonl", ".csv")]
    found = [p for p in found if p.is_file()]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise DataError(folder, [(None, f"both {found[0].name} and {found[1].name}; keep one")])
    present = sorted({p.stem for p in folder.iterdir() if p.suffix in (".jsonl", ".csv")})
    msg = (
        f"missing file: split {split!r} not found for {kind} data (expected {split}.jsonl or "
        f"{split}.csv; splits present: {', '.join(present) or 'none'})"
    )
    raise DataError(folder / f"{split}.jsonl", [(None, msg)])


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _id(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str | int):
        return str(value)
    return None


# --------------------------------------------------------------------------- retrieval


def _load_retrieval(task: AbsTask, folder: Path) -> dict[str, dict[str, Any]]:
    """``{"default": {split: RetrievalSplitData}}``, as ``AbsTaskRetrieval.load_data`` builds."""
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData

    qrels_dir = folder / "qrels"
    qrels_paths = {split: qrels_dir / f"{split}.tsv" for split in task.eval_splits}
    for split, path in qrels_paths.items():
        if not path.is_file():
            present = sorted(p.stem for p in qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
            msg = (
                f"missing file: no judgements for split {split!r} of {task.metadata.name} "
                f"(splits present: {', '.join(present) or 'none'})"
            )
            raise DataError(path, [(None, msg)])
    corpus_path, queries_path = folder / "corpus.jsonl", folder / "queries.jsonl"
    _require_file(corpus_path, "BEIR corpus: _id, title, text")
    _require_file(queries_path, "BEIR queries: _id, text")
    corpus = _read_corpus(corpus_path)
    queries = _read_queries(queries_path)
    corpus_ds = _corpus_dataset(corpus)

    dataset: dict[str, Any] = {}
    for split, path in qrels_paths.items():
        qrels = _read_qrels(path, set(corpus), queries)
        kept = {qid: text for qid, text in queries.items() if qid in qrels}
        dataset[split] = RetrievalSplitData(
            corpus=corpus_ds,
            queries=_queries_dataset(kept),
            relevant_docs=qrels,
            top_ranked=None,
        )
    return {"default": dataset}


def _read_corpus(path: Path) -> dict[str, tuple[str, str]]:
    """Document id -> (title, text), in file order."""
    problems = _Problems(path)
    docs: dict[str, tuple[str, str]] = {}
    first_seen: dict[str, int] = {}
    for lineno, obj in _read_jsonl(path, problems):
        doc_id = _id(obj.get("_id", obj.get("id")))
        text = _text(obj.get("text"))
        title = obj.get("title") or ""
        if doc_id is None:
            problems.add(lineno, "missing or non-string document id (_id)")
            continue
        if text is None:
            problems.add(lineno, f"document {doc_id!r}: missing or non-string 'text'")
            continue
        if not isinstance(title, str):
            problems.add(lineno, f"document {doc_id!r}: 'title' is not a string")
            continue
        if doc_id in docs:
            problems.add(
                lineno, f"duplicate document id {doc_id!r} (first on line {first_seen[doc_id]})"
            )
            continue
        docs[doc_id] = (title, text)
        first_seen[doc_id] = lineno
    if not docs and not problems.items:
        problems.add(None, "empty corpus: no documents")
    problems.raise_if_any()
    return docs


def _read_queries(path: Path) -> dict[str, str]:
    """Query id -> text, in file order."""
    problems = _Problems(path)
    queries: dict[str, str] = {}
    first_seen: dict[str, int] = {}
    for lineno, obj in _read_jsonl(path, problems):
        qid = _id(obj.get("_id", obj.get("id")))
        text = _text(obj.get("text"))
        if qid is None:
            problems.add(lineno, "missing or non-string query id (_id)")
        elif text is None:
            problems.add(lineno, f"query {qid!r}: missing or non-string 'text'")
        elif qid in queries:
            problems.add(lineno, f"duplicate query id {qid!r} (first on line {first_seen[qid]})")
        else:
            queries[qid] = text
            first_seen[qid] = lineno
    if not queries and not problems.items:
        problems.add(None, "no queries")
    problems.raise_if_any()
    return queries


def _read_qrels(
    path: Path, doc_ids: set[str], queries: dict[str, str]
) -> dict[str, dict[str, int]]:
    """Query id -> {document id: relevance}, checked against the corpus and the queries."""
    problems = _Problems(path)
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8-sig", newline="") as f:
        lines = list(enumerate(f, start=1))
    if not lines:
        raise DataError(path, [(1, "empty file: expected header 'query-id corpus-id score'")])
    header = lines[0][1].rstrip("\r\n").split("\t")
    if header[:3] != ["query-id", "corpus-id", "score"]:
        raise DataError(
            path, [(1, f"expected header 'query-id<TAB>corpus-id<TAB>score', got {header!r}")]
        )
    for lineno, line in lines[1:]:
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 3:
            problems.add(lineno, f"expected 3 tab-separated fields, got {len(fields)}")
            continue
        qid, doc_id, raw_score = fields[0], fields[1], fields[2]
        try:
            score = int(raw_score)
        except ValueError:
            problems.add(lineno, f"score {raw_score!r} is not an integer")
            continue
        if qid not in queries:
            problems.add(lineno, f"query {qid!r} is not in queries.jsonl")
        if doc_id not in doc_ids:
            problems.add(lineno, f"document {doc_id!r} is not in corpus.jsonl")
        if doc_id in qrels.get(qid, {}):
            problems.add(lineno, f"duplicate judgement for query {qid!r}, document {doc_id!r}")
        qrels.setdefault(qid, {})[doc_id] = score
    if not qrels and not problems.items:
        problems.add(None, "no judgements")
    problems.raise_if_any()
    return qrels


def _corpus_dataset(docs: dict[str, tuple[str, str]]) -> Dataset:
    from datasets import Dataset, Features, Value

    features = Features({"id": Value("string"), "title": Value("string"), "text": Value("string")})
    return Dataset.from_dict(
        {
            "id": list(docs),
            "title": [title for title, _ in docs.values()],
            "text": [text for _, text in docs.values()],
        },
        features=features,
    )


def _queries_dataset(queries: dict[str, str]) -> Dataset:
    from datasets import Dataset, Features, Value

    features = Features({"id": Value("string"), "text": Value("string")})
    return Dataset.from_dict(
        {"id": list(queries), "text": list(queries.values())}, features=features
    )


# --------------------------------------------------------------------------- STS


def _load_sts(task: AbsTask, folder: Path) -> Any:
    """``DatasetDict({split: Dataset(sentence1, sentence2, score, ...)})`` for the eval splits."""
    from datasets import DatasetDict

    original = any((folder / name).is_file() for name in set(STS_BENCHMARK_FILES.values()))
    low, high = float(task.min_score), float(task.max_score)
    splits = {}
    for split in task.eval_splits:
        if original:
            name = STS_BENCHMARK_FILES.get(split)
            if name is None or not (folder / name).is_file():
                present = sorted(p.name for p in folder.glob("sts-*.csv"))
                raise DataError(
                    folder / (name or f"sts-{split}.csv"),
                    [(None, f"missing file: split {split!r} not found (present: {present})")],
                )
            splits[split] = _read_sts_benchmark(folder / name, split, low, high)
        else:
            path = _plain_split_file(folder, split, "STS")
            splits[split] = _read_plain_sts(path, low, high)
    return DatasetDict(splits)


def _score(raw: Any, low: float, high: float) -> tuple[float | None, str | None]:
    """The score as a float, or an explanation of why it is not usable."""
    if isinstance(raw, bool):
        return None, f"score {raw!r} is not a number"
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None, f"score {raw!r} is not a number"
    if not math.isfinite(value) or not low <= value <= high:
        return None, f"score {value:g} outside the task's range [{low:g}, {high:g}]"
    return value, None


def _read_sts_benchmark(path: Path, split: str, low: float, high: float) -> Dataset:
    """One file of the STS Benchmark release: tab separated, no header, quotes are literal."""
    from datasets import Dataset, Features, Value

    problems = _Problems(path)
    columns: dict[str, list[Any]] = {c: [] for c in ("split", *STS_BENCHMARK_COLUMNS)}
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        for lineno, fields in enumerate(reader, start=1):
            if not fields or not any(x.strip() for x in fields):
                continue
            if len(fields) < len(STS_BENCHMARK_COLUMNS):
                problems.add(
                    lineno,
                    f"expected at least {len(STS_BENCHMARK_COLUMNS)} tab-separated fields "
                    f"({' '.join(STS_BENCHMARK_COLUMNS)}), got {len(fields)}",
                )
                continue
            row = dict(zip(STS_BENCHMARK_COLUMNS, fields, strict=False))
            score, why = _score(row["score"], low, high)
            if why:
                problems.add(lineno, why)
                continue
            columns["split"].append("dev" if split == "validation" else split)
            for c in STS_BENCHMARK_COLUMNS:
                columns[c].append(score if c == "score" else row[c])
    if not columns["score"] and not problems.items:
        problems.add(None, "no sentence pairs")
    problems.raise_if_any()
    features = Features(
        {
            c: Value("float64" if c == "score" else "string")
            for c in ("split", *STS_BENCHMARK_COLUMNS)
        }
    )
    return Dataset.from_dict(columns, features=features)


def _read_plain_sts(path: Path, low: float, high: float) -> Dataset:
    from datasets import Dataset, Features, Value

    problems = _Problems(path)
    columns: dict[str, list[Any]] = {"sentence1": [], "sentence2": [], "score": []}
    for lineno, row in _read_table(path, ("sentence1", "sentence2", "score"), problems):
        s1, s2 = _text(row["sentence1"]), _text(row["sentence2"])
        score, why = _score(row["score"], low, high)
        if s1 is None or s2 is None:
            problems.add(lineno, "sentence1 and sentence2 must be strings")
        elif why:
            problems.add(lineno, why)
        else:
            columns["sentence1"].append(s1)
            columns["sentence2"].append(s2)
            columns["score"].append(score)
    if not columns["score"] and not problems.items:
        problems.add(None, "no sentence pairs")
    problems.raise_if_any()
    features = Features(
        {"sentence1": Value("string"), "sentence2": Value("string"), "score": Value("float64")}
    )
    return Dataset.from_dict(columns, features=features)


# --------------------------------------------------------------------------- classification


def _load_classification(task: AbsTask, folder: Path) -> Any:
    """``DatasetDict({split: Dataset(text, label, ...)})`` for the eval and train splits."""
    from datasets import DatasetDict

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
            splits[split] = _read_plain_classification(_plain_split_file(folder, split, "labelled"))
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
    from datasets import Dataset, Features, Value

    problems = _Problems(path)
    rows = _read_csv(path, problems, ("text", "category"))
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
    if not columns["text"] and not problems.items:
        problems.add(None, "no examples")
    problems.raise_if_any()
    features = Features(
        {"text": Value("string"), "label": Value("int64"), "label_text": Value("string")}
    )
    return Dataset.from_dict(columns, features=features)


def _read_plain_classification(path: Path) -> Dataset:
    from datasets import Dataset, Features, Value

    problems = _Problems(path)
    texts: list[str] = []
    labels: list[Any] = []
    for lineno, row in _read_table(path, ("text", "label"), problems):
        text, label = _text(row["text"]), row["label"]
        if path.suffix == ".csv" and isinstance(label, str) and label.lstrip("-").isdigit():
            label = int(label)
        if text is None:
            problems.add(lineno, "text must be a string")
        elif isinstance(label, bool) or not isinstance(label, int | str):
            problems.add(lineno, f"label {label!r} must be an integer or a string")
        else:
            texts.append(text)
            labels.append(label)
    kinds = {type(x) for x in labels}
    if len(kinds) > 1:
        problems.add(None, "labels mix integers and strings")
    if not texts and not problems.items:
        problems.add(None, "no examples")
    problems.raise_if_any()
    label_type = "int64" if kinds == {int} else "string"
    features = Features({"text": Value("string"), "label": Value(label_type)})
    return Dataset.from_dict({"text": texts, "label": labels}, features=features)


_LOADERS: dict[str, Callable[[Any, Path], Any]] = {
    "Retrieval": _load_retrieval,
    "STS": _load_sts,
    "Classification": _load_classification,
}
