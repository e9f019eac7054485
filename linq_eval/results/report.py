"""A self-contained HTML report of a table: sortable tables and inline SVG charts.

The file needs nothing beyond itself (no network, no external JS or CSS): open it in a browser.
Charts: one bar chart per summary column (each type mean, Average, Mean(TaskType)) with every
row, runs highlighted against the baselines; and, per compared row, the per-task deltas against
a reference row.

Example::

    linq-eval table runs/linq --baselines published --format html --output report.html
"""

from __future__ import annotations

import datetime
import html
import json
from collections.abc import Sequence
from typing import NamedTuple

from linq_eval.results.tables import MISSING, Row, Table, find_row, format_score
from linq_eval.results.text_formats import per_task_grid

RUN_COLOR = "#d1495b"
BASELINE_COLOR = "#6c8ebf"
UP_COLOR = "#2e8b57"
DOWN_COLOR = "#c0392b"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2.2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; }
th { background: #f4f4f4; cursor: pointer; user-select: none; position: sticky; top: 0; }
th.sorted-asc::after { content: " \\25B2"; } th.sorted-desc::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.missing { color: #999; text-align: center; }
tr.run td:first-child { font-weight: 600; color: #a0192e; }
tr.reference td:first-child::after { content: " (reference)"; font-weight: 400; color: #666; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5rem; }
figure { margin: 0; } figcaption { font-size: 0.85rem; color: #444; }
.wide { overflow-x: auto; }
ul.notes li { font-size: 0.85rem; }
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


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _row_class(table: Table, row: Row) -> str:
    classes = ["baseline" if row.is_baseline else "run"]
    if row is table.reference:
        classes.append("reference")
    return " ".join(classes)


def _html_table(
    table_id: str,
    header: Sequence[str],
    body: Sequence[Sequence[str]],
    values: Sequence[Sequence[float | None | str]],
    row_classes: Sequence[str] | None = None,
) -> str:
    """A sortable table; ``values`` gives each cell's sort key (a number, None, or text)."""
    out = [f'<div class="wide"><table class="sortable" id="{_e(table_id)}"><thead><tr>']
    out += [f"<th>{_e(h)}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for i, (cells, keys) in enumerate(zip(body, values, strict=True)):
        cls = f' class="{_e(row_classes[i])}"' if row_classes else ""
        out.append(f"<tr{cls}>")
        for text, key in zip(cells, keys, strict=True):
            if isinstance(key, str):
                out.append(f"<td>{_e(text)}</td>")
            elif key is None:
                out.append(f'<td class="missing" data-value="">{_e(text)}</td>')
            else:
                out.append(f'<td class="num" data-value="{key:.6f}">{_e(text)}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


class Bar(NamedTuple):
    """One bar of a bar chart."""

    label: str
    """Text left of the bar."""
    value: float | None
    """Bar length (None: no bar, "no score")."""
    text: str
    """Text right of the bar."""
    colour: str
    """Fill colour."""
    partial: bool = False
    """Drawn pale: a mean over an incomplete task set."""


def bar_chart(title: str, items: Sequence[Bar]) -> str:
    """A horizontal bar chart as inline SVG, on a 0-100 scale."""
    bar_h, gap, label_w, plot_w, pad = 16, 4, 290, 360, 70
    height = 28 + len(items) * (bar_h + gap) + 8
    width = label_w + plot_w + pad
    present = [b.value for b in items if b.value is not None]
    top = max(100.0, max(present, default=0.0))
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{_e(title)}">'
        ),
        f"<title>{_e(title)}</title>",
        f'<text x="0" y="16" font-size="13" font-weight="600">{_e(title)}</text>',
    ]
    for i, (label, value, shown, colour, partial) in enumerate(items):
        y = 28 + i * (bar_h + gap)
        out.append(
            f'<text x="{label_w - 6}" y="{y + bar_h - 4}" font-size="11" '
            f'text-anchor="end">{_e(label)}</text>'
        )
        if value is None:
            out.append(
                f'<text x="{label_w + 4}" y="{y + bar_h - 4}" font-size="11" '
                f'fill="#999">{_e(MISSING)} no score</text>'
            )
            continue
        w = max(1.0, plot_w * value / top)
        opacity = ' fill-opacity="0.45"' if partial else ""
        out.append(
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}"'
            f"{opacity}>"
            f"<title>{_e(label)}: {_e(shown)}</title></rect>"
        )
        out.append(
            f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 4}" font-size="11">{_e(shown)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def delta_chart(title: str, items: Sequence[tuple[str, float | None]], *, decimals: int = 2) -> str:
    """Per-task differences as a diverging horizontal bar chart (inline SVG)."""
    bar_h, gap, label_w, half, pad = 13, 3, 290, 200, 20
    room = half - 48  # the longest bar leaves room for its value label
    height = 28 + len(items) * (bar_h + gap) + 8
    width = label_w + 2 * half + pad
    present = [abs(v) for _, v in items if v is not None]
    span = max(1.0, max(present, default=0.0))
    zero = label_w + half
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{_e(title)}">'
        ),
        f"<title>{_e(title)}</title>",
        f'<text x="0" y="16" font-size="12" font-weight="600">{_e(title)}</text>',
        f'<line x1="{zero}" y1="24" x2="{zero}" y2="{height - 4}" stroke="#888"/>',
    ]
    for i, (label, value) in enumerate(items):
        y = 28 + i * (bar_h + gap)
        out.append(
            f'<text x="{label_w - 6}" y="{y + bar_h - 3}" font-size="10" '
            f'text-anchor="end">{_e(label)}</text>'
        )
        if value is None:
            out.append(
                f'<text x="{zero + 4}" y="{y + bar_h - 3}" font-size="10" fill="#999">'
                f"{_e(MISSING)} no reference score</text>"
            )
            continue
        w = max(1.0, room * abs(value) / span)
        x = zero if value >= 0 else zero - w
        colour = UP_COLOR if value >= 0 else DOWN_COLOR
        shown = format_score(value, decimals, signed=True)
        out.append(
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
            f"<title>{_e(label)}: {_e(shown)}</title></rect>"
        )
        tx = zero + w + 3 if value >= 0 else zero - w - 3
        anchor = "start" if value >= 0 else "end"
        out.append(
            f'<text x="{tx:.1f}" y="{y + bar_h - 3}" font-size="10" '
            f'text-anchor="{anchor}">{_e(shown)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _default_reference(table: Table) -> Row:
    """The reference for delta charts when none is chosen: the run's own published baseline."""
    if table.reference is not None:
        return table.reference
    runs = [r for r in table.rows if not r.is_baseline]
    for run in runs:
        for row in table.rows:
            if row.is_baseline and row.result_set.model == run.result_set.model:
                return row
    baselines = [r for r in table.rows if r.is_baseline]
    return (baselines or table.rows)[0]


def _type_charts(table: Table, decimals: int) -> str:
    charts = []
    for col in table.columns:
        items = []
        for row in table.rows:
            m = row.means[col]
            colour = BASELINE_COLOR if row.is_baseline else RUN_COLOR
            value = m.value if m.n else None
            items.append(Bar(row.label, value, m.format(decimals), colour, not m.complete))
        charts.append(
            f"<figure>{bar_chart(col, items)}"
            f"<figcaption>{_e(col)}: runs in red, baselines in blue; "
            f"pale bars with (n/N) are means over an incomplete set.</figcaption></figure>"
        )
    return '<div class="charts">' + "".join(charts) + "</div>"


def _delta_charts(table: Table, reference: Row, decimals: int) -> str:
    compared = [r for r in table.rows if not r.is_baseline and r is not reference]
    if not compared:
        compared = [r for r in table.rows if r is not reference]
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
        caption = "Green: above the reference; red: below."
        if absent:
            shown = ", ".join(absent) if len(absent) <= 12 else f"{len(absent)} tasks"
            caption += f" Not shown, no score in {row.label}: {shown}."
        charts.append(
            f"<figure>{delta_chart(title, items, decimals=decimals)}"
            f"<figcaption>{_e(caption)}</figcaption></figure>"
        )
    return '<div class="charts">' + "".join(charts) + "</div>"


def _sources(table: Table) -> str:
    out = ['<ul class="notes">']
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
    out.append("</ul>")
    return "".join(out)


def render_html(table: Table, *, decimals: int = 2, reference: str | None = None) -> str:
    """The whole report as one HTML document (string)."""
    from linq_eval import __version__

    ref = find_row(table.rows, reference) if reference else _default_reference(table)
    classes = [_row_class(table, r) for r in table.rows]

    header = ["Model", *table.columns]
    body, values = [], []
    for row in table.rows:
        body.append([row.label] + [row.means[c].format(decimals) for c in table.columns])
        values.append(
            [row.label]
            + [row.means[c].value if row.means[c].complete else None for c in table.columns]
        )
    summary = _html_table("summary", header, body, values, classes)

    pt_header, pt_body = per_task_grid(table, decimals)
    pt_values = [
        cells[:3] + [table.rows[j].scores[cells[0]].score for j in range(len(table.rows))]
        for cells in pt_body
    ]
    per_task = _html_table("per-task", pt_header, pt_body, pt_values)

    notes = "".join(f"<li>{_e(n)}</li>" for n in table.notes())
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = f"linq-eval report: {table.benchmark.name}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f"<p>Main scores x100 ({len(table.benchmark.tasks)} tasks); "
        f"a mean over an incomplete set shows its coverage, a missing task shows {MISSING}. "
        f"Click a column header to sort. Generated by linq-eval {__version__}, {stamp}.</p>"
        f"<h2>Summary</h2>{summary}"
        f"<h2>Per task type</h2>{_type_charts(table, decimals)}"
        f"<h2>Per-task deltas against {_e(ref.label)}</h2>{_delta_charts(table, ref, decimals)}"
        f"<h2>Per-task scores</h2>{per_task}"
        f"<h2>Sources</h2>{_sources(table)}"
        + (f'<h2>Notes</h2><ul class="notes">{notes}</ul>' if notes else "")
        + f"<script>{_SORT_JS}</script></body></html>\n"
    )
