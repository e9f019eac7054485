"""Inline SVG charts of the HTML report: ranked bar charts of means, diverging per-task deltas.

Pure functions from labelled numbers to an ``<svg>`` string (no scripts, no external files).
A bar chart draws only values that share one scale: the caller passes an incomplete mean as a
bar without a value, and the chart writes its note (``85.80 (5/56): not drawn``) in place of a
bar, so a mean over 5 tasks is never drawn beside means over 56.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import NamedTuple

from linq_eval.results.tables import MISSING, format_score, round_score

RUN_COLOR = "#d1495b"
BASELINE_COLOR = "#6c8ebf"
UP_COLOR = "#2e8b57"
DOWN_COLOR = "#c0392b"
ZERO_COLOR = "#999999"
NOTE_COLOR = "#888888"


def escape(text: object) -> str:
    """HTML/SVG text and attribute escaping."""
    return html.escape(str(text), quote=True)


class Bar(NamedTuple):
    """One bar of a bar chart."""

    label: str
    """Text left of the bar."""
    value: float | None
    """Bar length; None draws no bar, only ``text`` (a missing or incomplete mean)."""
    text: str
    """Text right of the bar, or in its place."""
    colour: str
    """Fill colour."""


def _svg_open(title: str, width: int, height: int, size: int) -> list[str]:
    return [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{escape(title)}">'
        ),
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-size="{size}" font-weight="600">{escape(title)}</text>',
    ]


def _ranked(items: Sequence[Bar]) -> list[Bar]:
    """Largest value first; bars without a value last, in their given order."""
    drawn = sorted((b for b in items if b.value is not None), key=lambda b: -(b.value or 0.0))
    return drawn + [b for b in items if b.value is None]


def bar_chart(title: str, items: Sequence[Bar]) -> str:
    """A horizontal bar chart as inline SVG on a 0-100 scale, ranked by value."""
    bar_h, gap, label_w, plot_w, pad = 16, 4, 270, 320, 60
    height = 28 + len(items) * (bar_h + gap) + 8
    width = label_w + plot_w + pad
    top = max(100.0, max((b.value for b in items if b.value is not None), default=0.0))
    out = _svg_open(title, width, height, 13)
    for i, (label, value, shown, colour) in enumerate(_ranked(items)):
        y = 28 + i * (bar_h + gap)
        out.append(
            f'<text x="{label_w - 6}" y="{y + bar_h - 4}" font-size="11" '
            f'text-anchor="end">{escape(label)}</text>'
        )
        if value is None:
            out.append(
                f'<text x="{label_w + 4}" y="{y + bar_h - 4}" font-size="11" '
                f'fill="{NOTE_COLOR}">{escape(shown)}</text>'
            )
            continue
        w = max(1.0, plot_w * value / top)
        out.append(
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
            f"<title>{escape(label)}: {escape(shown)}</title></rect>"
        )
        out.append(
            f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 4}" font-size="11">'
            f"{escape(shown)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def sign_colour(value: float, decimals: int = 2) -> str:
    """Green above zero, red below, grey for what rounds to zero."""
    rounded = round_score(value, decimals)
    return UP_COLOR if rounded > 0 else DOWN_COLOR if rounded < 0 else ZERO_COLOR


def delta_chart(title: str, items: Sequence[tuple[str, float | None]], *, decimals: int = 2) -> str:
    """Per-task differences as a diverging horizontal bar chart (inline SVG): largest gain
    first, largest loss last, coloured by sign; tasks without a difference at the end."""
    bar_h, gap, label_w, half, pad = 13, 3, 270, 200, 20
    room = half - 48  # the longest bar leaves room for its value label
    height = 28 + len(items) * (bar_h + gap) + 8
    width = label_w + 2 * half + pad
    span = max(1.0, max((abs(v) for _, v in items if v is not None), default=0.0))
    zero = label_w + half
    ranked = sorted((i for i in items if i[1] is not None), key=lambda i: -(i[1] or 0.0))
    ranked += [i for i in items if i[1] is None]
    out = _svg_open(title, width, height, 12)
    out.append(f'<line x1="{zero}" y1="24" x2="{zero}" y2="{height - 4}" stroke="#888"/>')
    for i, (label, value) in enumerate(ranked):
        y = 28 + i * (bar_h + gap)
        out.append(
            f'<text x="{label_w - 6}" y="{y + bar_h - 3}" font-size="10" '
            f'text-anchor="end">{escape(label)}</text>'
        )
        if value is None:
            out.append(
                f'<text x="{zero + 4}" y="{y + bar_h - 3}" font-size="10" fill="{NOTE_COLOR}">'
                f"{escape(MISSING)} no reference score</text>"
            )
            continue
        w = max(1.0, room * abs(value) / span)
        x = zero if value >= 0 else zero - w
        shown = format_score(value, decimals, signed=True)
        out.append(
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
            f'fill="{sign_colour(value, decimals)}">'
            f"<title>{escape(label)}: {escape(shown)}</title></rect>"
        )
        tx = zero + w + 3 if value >= 0 else zero - w - 3
        anchor = "start" if value >= 0 else "end"
        out.append(
            f'<text x="{tx:.1f}" y="{y + bar_h - 3}" font-size="10" '
            f'text-anchor="{anchor}">{escape(shown)}</text>'
        )
    out.append("</svg>")
    return "".join(out)
