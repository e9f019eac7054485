"""Small local data files for the local-data tests (written into tmp_path)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """One JSON object per line (strings are written as they are, to make bad lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sample_beir(
    src: Path, dest: Path, *, queries: int, other_docs: int, split: str = "test"
) -> Path:
    """A sample of a real BEIR folder (``src``, e.g. ../shared/data/scifact) written to
    ``dest``: the first ``queries`` queries of its test qrels with every judgement of theirs,
    their judged documents, and ``other_docs`` more documents from the head of the corpus, its
    judgements as the ``split`` the target task evaluates. A sample, never the real set: no
    published score is claimed for it."""
    qrels = (src / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    head, rows = qrels[0], qrels[1:]
    wanted_q = list(dict.fromkeys(r.split("\t")[0] for r in rows))[:queries]
    rows = [r for r in rows if r.split("\t")[0] in set(wanted_q)]
    wanted_d = {r.split("\t")[1] for r in rows}
    corpus = [json.loads(line) for line in (src / "corpus.jsonl").open(encoding="utf-8")]
    others = [d for d in corpus if d["_id"] not in wanted_d][:other_docs]
    docs = [d for d in corpus if d["_id"] in wanted_d] + others
    lines = (src / "queries.jsonl").open(encoding="utf-8")
    kept = [q for q in map(json.loads, lines) if q["_id"] in set(wanted_q)]
    write_jsonl(dest / "corpus.jsonl", docs)
    write_jsonl(dest / "queries.jsonl", kept)
    (dest / "qrels").mkdir(parents=True, exist_ok=True)
    (dest / "qrels" / f"{split}.tsv").write_text("\n".join([head, *rows]) + "\n", encoding="utf-8")
    return dest
