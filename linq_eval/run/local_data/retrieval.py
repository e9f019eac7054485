"""Retrieval and reranking tasks from BEIR folders (reranking: plus the candidates per query).

- ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and
  ``qrels/<split>.tsv`` (header ``query-id corpus-id score``), as BEIR and mteb's hub data hold
  them.
- Reranking, as mteb 2 holds it: the same folder plus ``top_ranked/<split>.jsonl``, one line per
  query: ``{"query-id": ..., "corpus-ids": [...]}``, the documents to rerank.
- Reranking, as mteb 1 held it: ``<split>.jsonl`` (or ``.csv`` with JSON lists in the cells), one
  line per query: ``query``, ``positive`` (list of texts), ``negative`` (list of texts); turned
  into the retrieval layout exactly as mteb's ``AbsTaskReranking`` does.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from datasets import Dataset
from mteb.abstasks import AbsTask

from linq_eval.run.local_data.files import (
    DataError,
    Problems,
    cell_list,
    ident,
    nonblank,
    plain_split_file,
    read_jsonl,
    read_table,
    require_file,
    text,
    to_dataset,
)
from linq_eval.thirdparty.mteb_private import retrieval_split

_logger = logging.getLogger(__name__)

_RERANKING_COLUMNS = ("query", "positive", "negative")
"""mteb 1's reranking layout: one row per query with its positive and negative texts."""


def load_retrieval(task: AbsTask, folder: Path) -> dict[str, dict[str, Any]]:
    """``{split: {corpus, queries, relevant_docs, top_ranked}}``, as
    ``AbsTaskRetrieval.load_data`` builds it per subset (``mteb_private.retrieval_split``)."""
    reranking = task.metadata.type == "Reranking"
    if reranking and not (folder / "corpus.jsonl").is_file():
        return {split: _old_reranking_split(folder, split) for split in task.eval_splits}
    qrels_paths = {split: folder / "qrels" / f"{split}.tsv" for split in task.eval_splits}
    for split, path in qrels_paths.items():
        if not path.is_file():
            qrels_dir = folder / "qrels"
            present = sorted(p.stem for p in qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
            msg = (
                f"missing file: no judgements for split {split!r} of {task.metadata.name} "
                f"(splits present: {', '.join(present) or 'none'})"
            )
            raise DataError(path, [(None, msg)])
    corpus_path, queries_path = folder / "corpus.jsonl", folder / "queries.jsonl"
    require_file(corpus_path, "BEIR corpus: _id, title, text")
    require_file(queries_path, "BEIR queries: _id, text")
    corpus = _read_records(corpus_path, "document", "empty corpus: no documents")
    queries = {
        qid: body for qid, (_, body) in _read_records(queries_path, "query", "no queries").items()
    }
    corpus_ds = _corpus_dataset(corpus)
    dataset: dict[str, Any] = {}
    for split, path in qrels_paths.items():
        qrels = _read_qrels(path, set(corpus), queries)
        kept = {qid: query for qid, query in queries.items() if qid in qrels}
        ranked = folder / "top_ranked" / f"{split}.jsonl"
        if reranking:
            require_file(ranked, "the documents to rerank per query: query-id, corpus-ids")
        dataset[split] = retrieval_split(
            corpus=corpus_ds,
            queries=_queries_dataset(kept),
            relevant_docs=qrels,
            top_ranked=_read_top_ranked(ranked, set(corpus), kept) if ranked.is_file() else None,
        )
    return dataset


def _read_records(path: Path, what: str, empty: str) -> dict[str, tuple[str, str]]:
    """Id -> (title, text) of each document or query (``what``; queries have no title), in
    file order."""
    problems = Problems(path)
    records: dict[str, tuple[str, str]] = {}
    first_seen: dict[str, int] = {}
    for lineno, obj in read_jsonl(path, problems):
        rid = ident(obj.get("_id", obj.get("id")))
        body = text(obj.get("text"))
        title = (obj.get("title") or "") if what == "document" else ""
        if rid is None:
            problems.add(lineno, f"missing or non-string {what} id (_id)")
        elif body is None:
            problems.add(lineno, f"{what} {rid!r}: missing or non-string 'text'")
        elif not isinstance(title, str):
            problems.add(lineno, f"{what} {rid!r}: 'title' is not a string")
        elif rid in records:
            problems.add(lineno, f"duplicate {what} id {rid!r} (first on line {first_seen[rid]})")
        else:
            records[rid] = (title, body)
            first_seen[rid] = lineno
    problems.raise_if_any(None if records else empty)
    return records


def _read_qrels(
    path: Path, doc_ids: set[str], queries: dict[str, str]
) -> dict[str, dict[str, int]]:
    """Query id -> {document id: relevance}, checked against the corpus and the queries."""
    problems = Problems(path)
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
    for lineno, line in nonblank(path, problems, lines[1:]):
        fields = line.rstrip("\r\n").split("\t")
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
    problems.raise_if_any(None if qrels else "no judgements")
    return qrels


def _read_top_ranked(path: Path, doc_ids: set[str], judged: dict[str, str]) -> dict[str, list[str]]:
    """Query id -> the documents to rerank, for every judged query."""
    problems = Problems(path)
    ranked: dict[str, list[str]] = {}
    for lineno, obj in read_jsonl(path, problems):
        qid, docs = ident(obj.get("query-id")), obj.get("corpus-ids")
        if qid is None or not isinstance(docs, list):
            problems.add(lineno, "expected 'query-id' and a list 'corpus-ids'")
            continue
        unknown = [d for d in docs if ident(d) not in doc_ids]
        if unknown:
            problems.add(lineno, f"query {qid!r}: documents not in corpus.jsonl: {unknown[:5]}")
        elif qid in ranked:
            problems.add(lineno, f"duplicate query {qid!r}")
        else:
            ranked[qid] = [str(d) for d in docs]
    lacking = [q for q in judged if q not in ranked]
    if lacking:
        problems.add(None, f"judged queries without documents to rerank: {lacking[:5]}")
    problems.raise_if_any()
    return {qid: ranked[qid] for qid in judged}


def _corpus_dataset(docs: dict[str, tuple[str, str]]) -> Dataset:
    titles, texts = [t for t, _ in docs.values()], [b for _, b in docs.values()]
    columns = {"id": list(docs), "title": titles, "text": texts}
    return to_dataset(columns, id="string", title="string", text="string")


def _queries_dataset(queries: dict[str, str]) -> Dataset:
    columns = {"id": list(queries), "text": list(queries.values())}
    return to_dataset(columns, id="string", text="string")


# --------------------------------------------------------------------------- mteb 1 reranking


def _old_reranking_split(folder: Path, split: str) -> dict[str, Any]:
    """One split of mteb 1's reranking layout, as ``AbsTaskReranking`` converts it.

    Queries without a positive or without a negative are dropped (mteb does the same, so the
    scores match the hub's); the count is logged. Document ids follow mteb's scheme, positives
    first, so that ties break the same way.
    """
    path = plain_split_file(folder, split, "reranking (query, positive, negative)")
    rows = _read_reranking_rows(path)
    kept = [(q, pos, neg) for q, pos, neg in rows if pos and neg]
    if len(kept) < len(rows):
        _logger.warning(
            "%s: %d of %d queries have no positive or no negative and are left out, as mteb does",
            path,
            len(rows) - len(kept),
            len(rows),
        )
    if not kept:
        raise DataError(path, [(None, "no query with both a positive and a negative")])
    docs: dict[str, tuple[str, str]] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    ranked: dict[str, list[str]] = {}
    for idx, (query, positives, negatives) in enumerate(kept):
        qid = f"{split}_query{idx}"
        queries[qid] = query
        ids = [f"apositive_{qid}_{i:05d}" for i in range(len(positives))]
        ids += [f"negative_{qid}_{i:05d}" for i in range(len(negatives))]
        for doc_id, body in zip(ids, [*positives, *negatives], strict=True):
            docs[doc_id] = ("", body)
        qrels[qid] = {d: int(d.startswith("apositive_")) for d in ids}
        ranked[qid] = ids
    return retrieval_split(
        corpus=_corpus_dataset(docs),
        queries=_queries_dataset(queries),
        relevant_docs=qrels,
        top_ranked=ranked,
    )


def _read_reranking_rows(path: Path) -> list[tuple[str, list[str], list[str]]]:
    problems = Problems(path)
    from_csv = path.suffix == ".csv"
    rows = []
    for lineno, row in read_table(path, _RERANKING_COLUMNS, problems):
        query = text(row["query"])
        positives = cell_list(row["positive"], from_csv)
        negatives = cell_list(row["negative"], from_csv)
        if query is None:
            problems.add(lineno, "query must be a string")
        elif positives is None or negatives is None:
            problems.add(lineno, "positive and negative must be lists of texts")
        elif not all(isinstance(t, str) for t in [*positives, *negatives]):
            problems.add(lineno, "positive and negative must hold texts only")
        else:
            rows.append((query, positives, negatives))
    problems.raise_if_any(None if rows else "no queries")
    return rows


__all__ = ["load_retrieval"]
