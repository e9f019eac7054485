"""A table as text: Markdown, CSV, JSON and LaTeX, each written from a pandas DataFrame.

The summary and per-task tables are DataFrames of the cells the card shows
(``_summary_frame``, ``_per_task_frame``; LaTeX is written by pandas' ``to_latex``), and the
machine-readable rows a DataFrame of values (``_machine_frame``; CSV by ``to_csv``, JSON from
its records). Markdown is written here from the same frames: pandas' ``to_markdown`` needs the
optional ``tabulate`` package and pads every cell, which would change the files users have.

Every format shows the same columns (``Table.columns``: the summary means, then, for a run that
covers part of the benchmark, every row's mean over that run's tasks) and the same deltas; a
mean over an incomplete set is marked with its coverage in Markdown, LaTeX and CSV, and left
empty in JSON, where ``coverage``, ``missing`` and ``partial`` say why. A re-run of a
baseline's model (``Table.pairs``) is followed by a ``Δ vs <published>`` row of its
differences in every mean (over the tasks both have, with their coverage), and gets its own
per-task table of published score, run score and difference (``pairs`` in JSON).

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
from linq_eval.results.tables import MISSING, Table, format_score, round_score


def _fmt(value: float | None, decimals: int, signed: bool = False) -> str:
    return format_score(value, decimals, signed=signed)


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
    text = _fmt(delta.value, decimals, signed=True)
    return text if delta.complete or delta.value is None else f"{text} ({delta.n}/{delta.total})"


def _summary_frame(table: Table, decimals: int) -> pd.DataFrame:
    """The summary table as the text of its cells (the Markdown, LaTeX and HTML content): one
    row per result set; its label, the means, the deltas to the reference. A re-run of a
    baseline's model is followed by its row of differences."""
    header = ["Model", *table.columns, *(f"Δ {c}" for c in table.delta_columns)]
    body = []
    for row in table.rows:
        cells = [row.label] + [row.means[c].format(decimals) for c in table.columns]
        cells += [_fmt(table.delta(row, c), decimals, signed=True) for c in table.delta_columns]
        body.append(cells)
        pairing = table.pairing_of(row)
        if pairing is not None:
            deltas = [_delta_text(pairing.means[c], decimals) for c in table.columns]
            body.append([pairing.label, *deltas, *([""] * len(table.delta_columns))])
    return pd.DataFrame(body, columns=header, dtype=object)


def _per_task_frame(table: Table, decimals: int) -> pd.DataFrame:
    """The per-task table as text cells: one row per task, one column per result set."""
    header = ["Task", "Type", "Metric", *(r.label for r in table.rows)]
    body = []
    for bt in table.benchmark.tasks:
        body.append(
            [bt.name, bt.type, metric_label(table.benchmark.name, bt)]
            + [_fmt(r.scores[bt.name].score, decimals) for r in table.rows]
        )
    return pd.DataFrame(body, columns=header, dtype=object)


def _pair_frame(table: Table, pairing: Pairing, decimals: int) -> pd.DataFrame:
    """One re-run's per-task table as text cells: every task the run has a score for, its
    published score, the run's and the difference."""
    published, run = pairing.published, pairing.run
    header = ["Task", "Type", published.label, run.label, "Δ"]
    body = [
        [
            bt.name,
            bt.type,
            _fmt(published.scores[bt.name].score, decimals),
            _fmt(run.scores[bt.name].score, decimals),
            _fmt(pairing.tasks[bt.name], decimals, signed=True),
        ]
        for bt in table.benchmark.tasks
        if run.scores[bt.name].score is not None
    ]
    return pd.DataFrame(body, columns=header, dtype=object)


def _grid(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    return [str(c) for c in frame.columns], frame.to_numpy().tolist()


def _summary_grid(table: Table, decimals: int) -> tuple[list[str], list[list[str]]]:
    """Header and text cells of ``_summary_frame``."""
    return _grid(_summary_frame(table, decimals))


def per_task_grid(table: Table, decimals: int) -> tuple[list[str], list[list[str]]]:
    """Header and text cells of ``_per_task_frame``."""
    return _grid(_per_task_frame(table, decimals))


def pair_grid(table: Table, pairing: Pairing, decimals: int) -> tuple[list[str], list[list[str]]]:
    """Header and text cells of ``_pair_frame``."""
    return _grid(_pair_frame(table, pairing, decimals))


def _markdown_grid(header: list[str], body: list[list[str]], text_cols: int) -> str:
    align = ["---"] * text_cols + ["---:"] * (len(header) - text_cols)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def render_markdown(table: Table, *, per_task: bool = False, decimals: int = 2) -> str:
    """The card's table in Markdown (plus the per-task table), with footnotes."""
    parts = [_markdown_grid(*_summary_grid(table, decimals), 1)]
    if per_task:
        parts.append(_markdown_grid(*per_task_grid(table, decimals), 3))
    for pairing in table.pairs:
        grid = _markdown_grid(*pair_grid(table, pairing, decimals), 2)
        parts.append(f"{pairing.title}, per task:\n\n{grid}")
    notes = table.notes()
    if table.reference is not None:
        notes.insert(0, f"Δ columns: difference to {table.reference.label}.")
    if notes:
        parts.append("Notes:\n" + "\n".join(f"- {n}" for n in notes))
    return "\n\n".join(parts) + "\n"


def _machine_frame(table: Table, per_task: bool, decimals: int) -> pd.DataFrame:
    """One row per result set, as values: model, label, revision, source, each complete mean
    (None for an incomplete one), each delta, coverage, the missing tasks, and with
    ``per_task`` each task's score; rounded to ``decimals``."""
    out = []
    for row in table.rows:
        rs = row.result_set
        record: dict[str, Any] = {
            "model": rs.model,
            "label": row.label,
            "revision": rs.revision,
            "source": rs.source,
        }
        for c in table.columns:
            m = row.means[c]
            record[c] = _num(m.value, decimals) if m.complete else None
        for c in table.delta_columns:
            record[f"Δ {c}"] = _num(table.delta(row, c), decimals)
        record["coverage"] = f"{len(row.scores) - len(row.missing)}/{len(row.scores)}"
        record["missing"] = row.missing
        if per_task:
            for name, s in row.scores.items():
                record[name] = _num(s.score, decimals)
        out.append(record)
    return pd.DataFrame(out, dtype=object)  # object: None stays None, lists stay lists


def _delta_record(table: Table, pairing: Pairing, per_task: bool, decimals: int) -> dict[str, Any]:
    """The CSV row of a re-run's differences (``source`` ``delta``), signed: every mean over
    the tasks both rows have (with their coverage where that is part of the column's tasks),
    ``coverage`` how many tasks that is."""
    rs = pairing.run.result_set
    record: dict[str, Any] = {
        "model": rs.model,
        "label": pairing.label,
        "revision": rs.revision,
        "source": "delta",
    }
    for c in table.columns:
        delta = pairing.means[c]
        record[c] = None if delta.value is None else _delta_text(delta, decimals)
    record.update({f"Δ {c}": None for c in table.delta_columns})
    record["coverage"] = f"{len(pairing.common)}/{len(pairing.tasks)}"
    record["missing"] = [t for t, d in pairing.tasks.items() if d is None]
    if per_task:
        for t, d in pairing.tasks.items():
            record[t] = None if d is None else _fmt(d, decimals, signed=True)
    return record


def render_csv(table: Table, *, per_task: bool = False, decimals: int = 2) -> str:
    """One row per result set; an incomplete mean shows its coverage as in Markdown
    (``64.51 (1/15)``), ``coverage`` and ``missing`` say which tasks it lacks; a re-run of a
    baseline's model is followed by its row of differences (``source`` ``delta``)."""
    records = []
    rows = _machine_frame(table, per_task, decimals).to_dict(orient="records")
    for rec, row in zip(rows, table.rows, strict=True):
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
    records = _machine_frame(table, per_task, decimals).to_dict(orient="records")
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
    """A re-run and its published row in JSON: per task both scores and the difference, per
    mean column the difference over the tasks both have."""
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
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    MISSING: "--",
    "Δ": r"$\Delta$",
}


def _latex_escape(text: str) -> str:
    """Escape LaTeX's special characters."""
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def _latex_tabular(frame: pd.DataFrame, text_cols: int) -> str:
    spec = "l" * text_cols + "r" * (len(frame.columns) - text_cols)
    escaped = frame.map(_latex_escape)
    escaped.columns = [_latex_escape(str(c)) for c in frame.columns]
    return escaped.to_latex(index=False, column_format=spec, escape=False).rstrip("\n")


def render_latex(table: Table, *, per_task: bool = False, decimals: int = 2) -> str:
    """booktabs tabulars (``\\usepackage{booktabs}``); notes as LaTeX comments."""
    parts = [
        f"% {table.benchmark.name}; needs \\usepackage{{booktabs}}",
        _latex_tabular(_summary_frame(table, decimals), 1),
    ]
    if per_task:
        parts.append(_latex_tabular(_per_task_frame(table, decimals), 3))
    for pairing in table.pairs:
        parts.append(_latex_tabular(_pair_frame(table, pairing, decimals), 2))
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
