"""A self-contained HTML report of a table (no network, no external JS or CSS): sortable
tables, SVG charts of the means and of each compared row's per-task deltas, the queries that
moved, the gaps ``linq-eval explain`` found, every task's score, the sources and the notes.

    linq-eval table runs/new runs/old --reference runs/old --format html --output diff.html
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from linq_eval.paths import EXPLAIN_VERDICTS
from linq_eval.provenance import now
from linq_eval.results.charts import (
    BASELINE_COLOR,
    RUN_COLOR,
    Bar,
    bar_chart,
    delta_chart,
    sign_colour,
)
from linq_eval.results.charts import escape as _e
from linq_eval.results.per_query import SuiteQueryDiff, TaskQueryDiff
from linq_eval.results.query_report import compare_queries, evidence_tasks, moved
from linq_eval.results.tables import MISSING, Row, Table, format_score, tasks_count
from linq_eval.results.text_formats import pair_grid, per_task_grid

_TEXT_CHARS = 160
"""Query text shown in a per-query table (the rest in its tooltip)."""

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2.2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; }
th { background: #f4f4f4; cursor: pointer; user-select: none; position: sticky; top: 0; }
th.sorted-asc::after { content: " \\25B2"; } th.sorted-desc::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.missing { color: #999; text-align: center; }
td:first-child { min-width: 13rem; }
p.note { font-size: 0.85rem; color: #444; }
tr.run td:first-child { font-weight: 600; color: #a0192e; }
tr.reference td:first-child::after { content: " (reference)"; font-weight: 400; color: #666; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5rem; }
figure { margin: 0; width: min-content; } figcaption { font-size: 0.85rem; color: #444; }
.wide { overflow-x: auto; }
ul.notes li { font-size: 0.85rem; }
table.queries td { vertical-align: top; }
table.queries td.text { max-width: 28rem; }
table.queries td.docs {
  max-width: 16rem; font-size: 0.75rem; overflow-wrap: anywhere; color: #444;
}
p.summary { font-size: 0.9rem; }
svg text { font-family: system-ui, sans-serif; }
"""

_SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var desc = !th.classList.contains("sorted-desc");
      table.querySelectorAll("th").forEach(function (h) {
        h.classList.remove("sorted-asc", "sorted-desc");
      });
      th.classList.add(desc ? "sorted-desc" : "sorted-asc");
      function key(row) {
        var cell = row.cells[col];
        var v = cell.getAttribute("data-value");
        if (v === null) { return cell.textContent.toLowerCase(); }
        return v === "" ? null : parseFloat(v);
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null && y === null) { return 0; }
        if (x === null) { return 1; }
        if (y === null) { return -1; }
        if (x < y) { return desc ? 1 : -1; }
        if (x > y) { return desc ? -1 : 1; }
        return 0;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _table(attributes: str, header: Sequence[str], rows: Sequence[str]) -> str:
    """A table of ``header`` and the ``<tr>`` rows given."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    return (
        f"<table{attributes}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _html_table(
    table_id: str,
    header: Sequence[str],
    body: Sequence[Sequence[str]],
    values: Sequence[Sequence[float | None | str]],
    row_classes: Sequence[str] | None = None,
) -> str:
    """A sortable table; ``values`` gives each cell's sort key (a number, None, or text)."""
    rows = []
    for i, (cells, keys) in enumerate(zip(body, values, strict=True)):
        row = [f'<tr class="{_e(row_classes[i])}">' if row_classes else "<tr>"]
        for text, key in zip(cells, keys, strict=True):
            if isinstance(key, str):
                row.append(f"<td>{_e(text)}</td>")
            elif key is None:
                row.append(f'<td class="missing" data-value="">{_e(text)}</td>')
            else:
                row.append(f'<td class="num" data-value="{key:.6f}">{_e(text)}</td>')
        rows.append("".join(row) + "</tr>")
    table = _table(f' class="sortable" id="{_e(table_id)}"', header, rows)
    return f'<div class="wide">{table}</div>'


def _figures(figures: Sequence[tuple[str, str]]) -> str:
    """Charts with their captions, side by side."""
    shown = "".join(f"<figure>{c}<figcaption>{_e(t)}</figcaption></figure>" for c, t in figures)
    return f'<div class="charts">{shown}</div>'


def _mean_chart(table: Table, column: str, decimals: int) -> str:
    """One column's means, ranked; a mean over an incomplete set is named, not drawn."""
    items = []
    for row in table.rows:
        m = row.means[column]
        colour = BASELINE_COLOR if row.is_baseline else RUN_COLOR
        shown = m.format(decimals)
        if not m.complete:
            shown = f"{shown}: incomplete, not drawn" if m.n else f"{MISSING} no score"
        items.append(Bar(row.label, m.value if m.complete else None, shown, colour))
    return bar_chart(column, items)


def _type_charts(table: Table, decimals: int) -> str:
    """The like-for-like charts (means over a partial run's tasks) first, then one per column."""
    subsets = {s.column: s for s in table.subsets}
    figures, empty = [], []
    for col in sorted(table.columns, key=lambda c: c not in subsets):
        if not any(row.means[col].complete for row in table.rows):
            empty.append(col)
            continue
        if col in subsets:
            s = subsets[col]
            caption = (
                f"Like for like: every row's mean over the {len(s.tasks)} tasks of "
                f"{', '.join(s.owners)} ({', '.join(s.tasks)})."
            )
        else:
            caption = f"{col}: runs in red, baselines in blue; incomplete means are not drawn."
        figures.append((_mean_chart(table, col, decimals), caption))
    out = _figures(figures)
    if empty:
        shown = _e(", ".join(empty))
        out += f'<p class="note">Not drawn, no row has a complete mean: {shown}.</p>'
    return out


def _compared_rows(table: Table, reference: Row) -> list[Row]:
    """The rows shown against the reference: the runs, or every other row if none is a run."""
    compared = [r for r in table.rows if not r.is_baseline and r is not reference]
    return compared or [r for r in table.rows if r is not reference]


def _delta_charts(table: Table, reference: Row, decimals: int) -> str:
    compared = _compared_rows(table, reference)
    if not compared:
        return "<p>Only one result set: nothing to compare.</p>"
    charts = []
    for row in compared:
        items, absent = [], []
        for bt in table.benchmark.tasks:
            a, b = row.scores[bt.name].score, reference.scores[bt.name].score
            if a is None:
                absent.append(bt.name)
                continue
            items.append((bt.name, None if b is None else a - b))
        title = f"{row.label} minus {reference.label}, per task (points x100)"
        caption = "Sorted; green: above the reference, red: below, grey: equal."
        if absent:
            shown = ", ".join(absent) if len(absent) <= 12 else f"{len(absent)} tasks"
            caption += f" Not shown, no score in {row.label}: {shown}."
        charts.append((delta_chart(title, items, decimals=decimals), caption))
    return _figures(charts)


def _query_summary(diff: TaskQueryDiff, decimals: int) -> str:
    shown = format_score(100 * diff.mean_delta, decimals, signed=True)
    colour = sign_colour(100 * diff.mean_delta, decimals)
    text = (
        f"{diff.queries} queries: <b>{diff.up} up</b>, <b>{diff.down} down</b>, "
        f"{diff.unchanged} unchanged; mean change "
        f'<b style="color:{colour}">{_e(shown)}</b> points x100 ({_e(diff.metric)}); '
        f"paired permutation test over queries: p = {diff.p_value:.2g}."
    )
    if diff.only_in_one:
        text += f" {diff.only_in_one} queries in one run only (left out)."
    return f'<p class="summary">{text}</p>'


def _suite_summary(suite: SuiteQueryDiff, decimals: int) -> str:
    shown = format_score(100 * suite.mean_delta, decimals, signed=True)
    colour = sign_colour(100 * suite.mean_delta, decimals)
    return (
        f'<p class="summary">{tasks_count(len(suite.tasks))} with per-query evidence in both '
        f"({_e(', '.join(suite.tasks))}), {suite.queries} queries: mean of the task scores "
        f'changed by <b style="color:{colour}">{_e(shown)}</b> points x100; task-stratified '
        f"paired permutation test over the queries: p = {suite.p_value:.2g}.</p>"
    )


def _query_table(diff: TaskQueryDiff, decimals: int) -> str:
    if not diff.worst:
        return "<p>No query lost.</p>"
    head = ["Query", "Text", "Before", "After", "Change", "Entered top 10", "Left top 10"]
    rows = []
    for c in diff.worst:
        text = c.text if len(c.text) <= _TEXT_CHARS else c.text[: _TEXT_CHARS - 1] + "…"
        delta = 100 * c.delta
        change = format_score(delta, decimals, signed=True)
        cells = [
            f"<td>{_e(c.query_id)}</td>",
            f'<td class="text" title="{_e(c.text)}">{_e(text)}</td>',
            f'<td class="num">{format_score(100 * c.before, decimals)}</td>',
            f'<td class="num">{format_score(100 * c.after, decimals)}</td>',
            f'<td class="num" style="color:{sign_colour(delta, decimals)}">{change}</td>',
            f'<td class="docs">{_e(", ".join(c.entered)) or MISSING}</td>',
            f'<td class="docs">{_e(", ".join(c.left)) or MISSING}</td>',
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    table = _table(' class="queries"', head, rows)
    return f'<div class="wide">{table}</div>'


def _query_sections(table: Table, reference: Row, decimals: int) -> str:
    out, suite = [], [t.name for t in table.benchmark.tasks]
    for row in _compared_rows(table, reference):
        rs = row.result_set
        found = compare_queries(rs, reference.result_set, evidence_tasks(rs), suite=suite)
        if found.suite is not None:
            out.append(
                f"<h3>{_e(row.label)}: the suite</h3>{_suite_summary(found.suite, decimals)}"
            )
        diffs = moved(found.tasks.values())
        if not diffs:
            out.append(
                f"<p>{_e(row.label)}: no task with per-query evidence in both it and "
                f"{_e(reference.label)} moved (a run keeps it for retrieval and reranking "
                "tasks; shipped baselines have none).</p>"
            )
            continue
        for diff in diffs:
            out.append(f"<h3>{_e(row.label)}: {_e(diff.task)}</h3>")
            out.append(_query_summary(diff, decimals) + _query_table(diff, decimals))
    return "".join(out)


def _explained_sections(table: Table, decimals: int) -> str:
    """Each gap ``linq-eval explain`` found in a run row's output, its candidates, its verdict."""
    out = []
    for row in table.rows:
        path = row.result_set.path.parent.parent / EXPLAIN_VERDICTS
        if row.is_baseline or not path.is_file():
            continue
        found = json.loads(path.read_text(encoding="utf-8"))
        out.append(
            f"<h3>{_e(row.label)} against {_e(found['reference'])} (tolerance "
            f"{found['tolerance']:g})</h3>"
        )
        head = ["Candidate", "Score", "Minus reference", "Texts encoded", "From cache"]
        for verdict, gap in zip(found["verdicts"], found["gaps"], strict=True):
            rows = [
                f"<tr><td>{_e(t['candidate'])}</td>"
                f'<td class="num">{format_score(t["score"], decimals)}</td>'
                f'<td class="num">{format_score(t["distance"], decimals, signed=True)}</td>'
                f'<td class="num">{t["encoded_texts"]}</td>'
                f'<td class="num">{t["cached_texts"]}</td></tr>'
                for t in verdict["tried"]
            ]
            out.append(
                f"<p><b>{_e(gap['task'])}</b>: run {format_score(gap['run'], decimals)}, "
                f"reference {format_score(gap['reference'], decimals)}: "
                f"<b>{_e(verdict['verdict'])}</b>.</p>{_table('', head, rows)}"
            )
    return f"<h2>Gaps explained</h2>{''.join(out)}" if out else ""


def _sources(table: Table) -> str:
    out = []
    for row in table.rows:
        rs = row.result_set
        extra = ""
        if rs.settings:
            extra = " settings: " + json.dumps(rs.settings, sort_keys=True, default=str)
        elif rs.provenance.get("source"):
            extra = f" source: {rs.provenance['source']}"
        out.append(
            f"<li><b>{_e(row.label)}</b>: {_e(rs.model)} @ {_e(rs.revision)} "
            f"[{_e(rs.source)}] <code>{_e(rs.path)}</code>{_e(extra)}</li>"
        )
    return f'<ul class="notes">{"".join(out)}</ul>'


def _summary_table(table: Table, decimals: int) -> str:
    header = ["Model", *table.columns]
    body = [[r.label] + [r.means[c].format(decimals) for c in table.columns] for r in table.rows]
    values = [
        [r.label] + [r.means[c].value if r.means[c].complete else None for c in table.columns]
        for r in table.rows
    ]
    classes = [
        ("baseline" if r.is_baseline else "run") + (" reference" if r is table.reference else "")
        for r in table.rows
    ]
    return _html_table("summary", header, body, values, classes)


def _per_task_table(table: Table, decimals: int) -> str:
    """Every task some row has a score for (the others are counted below the table)."""
    header, body = per_task_grid(table, decimals)
    kept, values = [], []
    for cells in body:
        scores = [row.scores[cells[0]].score for row in table.rows]
        if any(v is not None for v in scores):
            kept.append(cells)
            values.append(cells[:3] + scores)
    out = _html_table("per-task", header, kept, values)
    if len(kept) < len(body):
        absent = len(body) - len(kept)
        out += f'<p class="note">{absent} tasks of the benchmark have no score in any row.</p>'
    return out


def _pair_tables(table: Table, decimals: int) -> str:
    """Each re-run beside the published row of its model, task by task (if any)."""
    out = []
    for i, pairing in enumerate(table.pairs, 1):
        header, body = pair_grid(table, pairing, decimals)
        published, run, deltas = pairing.published.scores, pairing.run.scores, pairing.tasks
        values = [[*c[:2], published[c[0]].score, run[c[0]].score, deltas[c[0]]] for c in body]
        grid = _html_table(f"pair-{i}", header, body, values)
        out.append(f"<h3>{_e(pairing.title)}</h3>{grid}")
    return f"<h2>Re-runs of published models</h2>{''.join(out)}" if out else ""


def render_html(table: Table, *, decimals: int = 2) -> str:
    """The whole report as one HTML document (string)."""
    from linq_eval import __version__

    # The reference of the delta charts when none is chosen: the run's own published row.
    baselines = [r for r in table.rows if r.is_baseline] or table.rows
    ref = table.reference or (table.pairs[0].published if table.pairs else baselines[0])
    notes = "".join(f"<li>{_e(n)}</li>" for n in table.notes())
    title = f"linq-eval report: {table.benchmark.name}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f"<p>Main scores x100 ({len(table.benchmark.tasks)} tasks); "
        f"a mean over an incomplete set shows its coverage, a missing task shows {MISSING}. "
        f"Click a column header to sort. Generated by linq-eval {__version__}, {now()}.</p>"
        f"<h2>Summary</h2>{_summary_table(table, decimals)}"
        f"<h2>Means</h2>{_type_charts(table, decimals)}"
        f"<h2>Per-task deltas against {_e(ref.label)}</h2>{_delta_charts(table, ref, decimals)}"
        f"<h2>Queries that moved, against {_e(ref.label)}</h2>"
        f"{_query_sections(table, ref, decimals)}{_pair_tables(table, decimals)}"
        f"{_explained_sections(table, decimals)}"
        f"<h2>Per-task scores</h2>{_per_task_table(table, decimals)}"
        f"<h2>Sources</h2>{_sources(table)}"
        + (f'<h2>Notes</h2><ul class="notes">{notes}</ul>' if notes else "")
        + f"<script>{_SORT_JS}</script></body></html>\n"
    )


__all__ = ["render_html"]
