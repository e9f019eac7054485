"""A table as text: Markdown, CSV, JSON and LaTeX, with the same columns and deltas.

Markdown is written here: pandas' ``to_markdown`` needs the optional ``tabulate`` and pads every
cell, which would change the files users have.

Example::

    from linq_eval.results.reading import load_baselines
    from linq_eval.results.tables import build_table
    from linq_eval.results.text_formats import render_markdown
    print(render_markdown(build_table(load_baselines()), decimals=1))
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from linq_eval.results.metrics import metric_label
from linq_eval.results.pairing import Delta, Pairing
from linq_eval.results.reading import ResultSet
from linq_eval.results.tables import MISSING, Table, format_score, round_score

_Grid = tuple[list[str], list[list[str]]]
"""A table's header and the text of its cells."""


def _num(value: float | None, decimals: int) -> float | None:
    return None if value is None else round_score(value, decimals)


def _csv_cell(value: Any, decimals: int) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return format_score(value, decimals)
    if isinstance(value, list):
        return ";".join(value)
    return str(value)


def _delta_text(delta: Delta, decimals: int) -> str:
    """``+0.12``, ``-0.30 (3/10)`` over part of a column's tasks, ``—`` for none."""
    text = format_score(delta.value, decimals, signed=True)
    return text if delta.complete or delta.value is None else f"{text} ({delta.n}/{delta.total})"


def _summary_grid(table: Table, decimals: int) -> _Grid:
    """The summary table: per row its label, means and deltas; a re-run then its differences."""
    header = ["Model", *table.columns, *(f"Δ {c}" for c in table.delta_columns)]
    body = []
    for row in table.rows:
        cells = [row.label] + [row.means[c].format(decimals) for c in table.columns]
        cells += [
            format_score(table.delta(row, c), decimals, signed=True) for c in table.delta_columns
        ]
        body.append(cells)
        pairing = table.pairing_of(row)
        if pairing is not None:
            deltas = [_delta_text(pairing.means[c], decimals) for c in table.columns]
            body.append([pairing.label, *deltas, *([""] * len(table.delta_columns))])
    return header, body


def per_task_grid(table: Table, decimals: int) -> _Grid:
    """The per-task table: one row per task, one column per result set."""
    header = ["Task", "Type", "Metric", *(r.label for r in table.rows)]
    body = [
        [bt.name, bt.type, metric_label(table.benchmark.name, bt)]
        + [format_score(r.scores[bt.name].score, decimals) for r in table.rows]
        for bt in table.benchmark.tasks
    ]
    return header, body


def pair_grid(table: Table, pairing: Pairing, decimals: int) -> _Grid:
    """One re-run's per-task table: published score, the run's and the difference."""
    published, run = pairing.published, pairing.run
    header = ["Task", "Type", published.label, run.label, "Δ"]
    body = [
        [
            bt.name,
            bt.type,
            format_score(published.scores[bt.name].score, decimals),
            format_score(run.scores[bt.name].score, decimals),
            format_score(pairing.tasks[bt.name], decimals, signed=True),
        ]
        for bt in table.benchmark.tasks
        if run.scores[bt.name].score is not None
    ]
    return header, body


def _grids(table: Table, per_task: bool, decimals: int) -> list[tuple[str, _Grid, int]]:
    """Each table of a text format: (its title, its grid, how many text columns lead)."""
    grids = [("", _summary_grid(table, decimals), 1)]
    if per_task:
        grids.append(("", per_task_grid(table, decimals), 3))
    grids += [(p.title, pair_grid(table, p, decimals), 2) for p in table.pairs]
    return grids


def _markdown_grid(header: list[str], body: list[list[str]], text_cols: int) -> str:
    align = ["---"] * text_cols + ["---:"] * (len(header) - text_cols)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def render_markdown(table: Table, *, per_task: bool = False, decimals: int = 2) -> str:
    """The card's table in Markdown (plus the per-task table), with footnotes."""
    parts = [
        (f"{title}, per task:\n\n" if title else "") + _markdown_grid(*grid, text_cols)
        for title, grid, text_cols in _grids(table, per_task, decimals)
    ]
    notes = table.notes()
    if table.reference is not None:
        notes.insert(0, f"Δ columns: difference to {table.reference.label}.")
    if notes:
        parts.append("Notes:\n" + "\n".join(f"- {n}" for n in notes))
    return "\n\n".join(parts) + "\n"


def _record(rs: ResultSet, label: str, source: str) -> dict[str, Any]:
    return {"model": rs.model, "label": label, "revision": rs.revision, "source": source}


def _machine_records(table: Table, per_task: bool, decimals: int) -> list[dict[str, Any]]:
    """One record per result set, as values: model, label, revision, source, each complete
    mean (None for an incomplete one), each delta, coverage, the missing tasks, and with
    ``per_task`` each task's score; rounded to ``decimals``."""
    out = []
    for row in table.rows:
        record = _record(row.result_set, row.label, row.result_set.source)
        for c in table.columns:
            m = row.means[c]
            record[c] = _num(m.value, decimals) if m.complete else None
        for c in table.delta_columns:
            record[f"Δ {c}"] = _num(table.delta(row, c), decimals)
        record["coverage"] = f"{len(row.scores) - len(row.missing)}/{len(row.scores)}"
        record["missing"] = row.missing
        if per_task:
            record.update({name: _num(s.score, decimals) for name, s in row.scores.items()})
        out.append(record)
    return out


def _delta_record(table: Table, pairing: Pairing, per_task: bool, decimals: int) -> dict[str, Any]:
    """The CSV row of a re-run's differences (``source`` ``delta``), signed, with coverage."""
    record = _record(pairing.run.result_set, pairing.label, "delta")
    for c in table.columns:
        delta = pairing.means[c]
        record[c] = None if delta.value is None else _delta_text(delta, decimals)
    record.update({f"Δ {c}": None for c in table.delta_columns})
    record["coverage"] = f"{len(pairing.common)}/{len(pairing.tasks)}"
    record["missing"] = [t for t, d in pairing.tasks.items() if d is None]
    if per_task:
        for t, d in pairing.tasks.items():
            record[t] = None if d is None else format_score(d, decimals, signed=True)
    return record


def render_csv(table: Table, *, per_task: bool = False, decimals: int = 2) -> str:
    """One row per result set; an incomplete mean shows its coverage as in Markdown
    (``64.51 (1/15)``), ``coverage`` and ``missing`` say which tasks it lacks; a re-run of a
    baseline's model is followed by its row of differences (``source`` ``delta``)."""
    records = []
    for rec, row in zip(_machine_records(table, per_task, decimals), table.rows, strict=True):
        for c in table.columns:
            if not row.means[c].complete and row.means[c].value is not None:
                rec[c] = row.means[c].format(decimals)
        records.append(rec)
        pairing = table.pairing_of(row)
        if pairing is not None:
            records.append(_delta_record(table, pairing, per_task, decimals))
    frame = pd.DataFrame(records, dtype=object)
    return frame.map(lambda v: _csv_cell(v, decimals)).to_csv(index=False, lineterminator="\n")


def render_json(table: Table, *, per_task: bool = False, decimals: int = 2) -> str:
    """Rows as JSON, with partial means and their coverage kept apart from complete ones."""
    records = _machine_records(table, per_task, decimals)
    for rec, row in zip(records, table.rows, strict=True):
        rec["partial"] = {
            c: {"mean": _num(m.value, decimals), "n": m.n, "of": m.total}
            for c, m in row.means.items()
            if not m.complete and m.value is not None
        }
        rec["path"] = str(row.result_set.path)
        if row.result_set.provenance:
            rec["provenance"] = row.result_set.provenance
    doc = {
        "benchmark": table.benchmark.name,
        "columns": table.columns,
        "task_sets": {s.column: list(s.tasks) for s in table.subsets},
        "reference": table.reference.label if table.reference else None,
        "rows": records,
        "pairs": [_pair_record(table, p, decimals) for p in table.pairs],
        "notes": table.notes(),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _pair_record(table: Table, pairing: Pairing, decimals: int) -> dict[str, Any]:
    """A re-run and its published row in JSON: per task both scores and the difference."""
    return {
        "model": pairing.model,
        "title": pairing.title,
        "published": pairing.published.label,
        "run": pairing.run.label,
        "tasks": {
            bt.name: {
                "published": _num(pairing.published.scores[bt.name].score, decimals),
                "run": _num(pairing.run.scores[bt.name].score, decimals),
                "delta": _num(pairing.tasks[bt.name], decimals),
            }
            for bt in table.benchmark.tasks
        },
        "means": {
            c: {
                "delta": _num(pairing.means[c].value, decimals),
                "n": pairing.means[c].n,
                "of": pairing.means[c].total,
            }
            for c in table.columns
        },
        "different_computations": list(pairing.different),
    }


_LATEX_ESCAPES = {
    **{c: "\\" + c for c in "&%$#_{}"},
    "\\": r"\textbackslash{}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    MISSING: "--",
    "Δ": r"$\Delta$",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def _latex_tabular(header: list[str], body: list[list[str]], text_cols: int) -> str:
    spec = "l" * text_cols + "r" * (len(header) - text_cols)
    escaped = pd.DataFrame(body, columns=header, dtype=object).map(_latex_escape)
    escaped.columns = [_latex_escape(str(c)) for c in header]
    return escaped.to_latex(index=False, column_format=spec, escape=False).rstrip("\n")


def render_latex(table: Table, *, per_task: bool = False, decimals: int = 2) -> str:
    """booktabs tabulars (``\\usepackage{booktabs}``); notes as LaTeX comments."""
    parts = [f"% {table.benchmark.name}; needs \\usepackage{{booktabs}}"]
    parts += [_latex_tabular(*grid, cols) for _, grid, cols in _grids(table, per_task, decimals)]
    parts += [f"% {n}" for n in table.notes()]
    return "\n\n".join(parts) + "\n"


__all__ = [
    "pair_grid",
    "per_task_grid",
    "render_csv",
    "render_json",
    "render_latex",
    "render_markdown",
]
