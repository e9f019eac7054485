"""Inline SVG charts of the HTML report: ranked bar charts of means, diverging per-task deltas.

A bar without a value (an incomplete mean) is drawn as its note in place of a bar, so a mean
over 5 tasks is never drawn beside means over 56.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar

from linq_eval.results.tables import MISSING, format_score, round_score

RUN_COLOR = "#d1495b"
BASELINE_COLOR = "#6c8ebf"
UP_COLOR = "#2e8b57"
DOWN_COLOR = "#c0392b"
_ZERO_COLOR = "#999999"
_NOTE_COLOR = "#888888"

_T = TypeVar("_T")


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


def _svg_open(title: str, width: int, height: int, size: int) -> str:
    t = escape(title)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{t}"><title>{t}</title>'
        f'<text x="0" y="16" font-size="{size}" font-weight="600">{t}</text>'
    )


class _Layout(NamedTuple):
    """Sizes of one kind of chart: rows of ``bar_h`` pixels ``gap`` apart under a title."""

    bar_h: int
    gap: int
    label_w: int
    font: int
    baseline: int
    """How far above a row's bottom its texts sit."""

    def y(self, i: int) -> int:
        return 28 + i * (self.bar_h + self.gap)

    def height(self, n: int) -> int:
        return 28 + n * (self.bar_h + self.gap) + 8

    def text(self, x: object, i: int, content: str, extra: str = "") -> str:
        """A text of row ``i`` at ``x`` as written (``extra``: further attributes)."""
        return (
            f'<text x="{x}" y="{self.y(i) + self.bar_h - self.baseline}" '
            f'font-size="{self.font}"{extra}>{content}</text>'
        )

    def label(self, i: int, label: str) -> str:
        """The row's label, right-aligned left of the plot."""
        return self.text(self.label_w - 6, i, escape(label), ' text-anchor="end"')

    def note(self, x: object, i: int, note: str) -> str:
        """Grey text in place of a bar."""
        return self.text(x, i, escape(note), f' fill="{_NOTE_COLOR}"')

    def bar(self, x: object, i: int, width: float, colour: str, tooltip: str) -> str:
        """The bar at ``x`` as written, with its tooltip."""
        return (
            f'<rect x="{x}" y="{self.y(i)}" width="{width:.1f}" height="{self.bar_h}" '
            f'fill="{colour}"><title>{escape(tooltip)}</title></rect>'
        )


_BARS = _Layout(bar_h=16, gap=4, label_w=270, font=11, baseline=4)
_DELTAS = _Layout(bar_h=13, gap=3, label_w=270, font=10, baseline=3)


def _ranked(items: Sequence[_T], value: Callable[[_T], float | None]) -> list[_T]:
    """Largest value first; items without a value last, in their given order."""
    drawn = sorted((i for i in items if value(i) is not None), key=lambda i: -(value(i) or 0.0))
    return drawn + [i for i in items if value(i) is None]


def bar_chart(title: str, items: Sequence[Bar]) -> str:
    """A horizontal bar chart as inline SVG on a 0-100 scale, ranked by value."""
    lay, plot_w, pad = _BARS, 320, 60
    height, width = lay.height(len(items)), lay.label_w + plot_w + pad
    top = max(100.0, max((b.value for b in items if b.value is not None), default=0.0))
    out = [_svg_open(title, width, height, 13)]
    for i, (label, value, shown, colour) in enumerate(_ranked(items, lambda b: b.value)):
        out.append(lay.label(i, label))
        if value is None:
            out.append(lay.note(lay.label_w + 4, i, shown))
            continue
        w = max(1.0, plot_w * value / top)
        out.append(lay.bar(lay.label_w, i, w, colour, f"{label}: {shown}"))
        out.append(lay.text(f"{lay.label_w + w + 4:.1f}", i, escape(shown)))
    out.append("</svg>")
    return "".join(out)


def sign_colour(value: float, decimals: int = 2) -> str:
    """Green above zero, red below, grey for what rounds to zero."""
    rounded = round_score(value, decimals)
    return UP_COLOR if rounded > 0 else DOWN_COLOR if rounded < 0 else _ZERO_COLOR


def delta_chart(title: str, items: Sequence[tuple[str, float | None]], *, decimals: int = 2) -> str:
    """Per-task differences as a diverging horizontal bar chart (inline SVG): largest gain
    first, largest loss last, coloured by sign; tasks without a difference at the end."""
    lay, half, pad = _DELTAS, 200, 20
    room = half - 48  # the longest bar leaves room for its value label
    height, width = lay.height(len(items)), lay.label_w + 2 * half + pad
    span = max(1.0, max((abs(v) for _, v in items if v is not None), default=0.0))
    zero = lay.label_w + half
    out = [_svg_open(title, width, height, 12)]
    out.append(f'<line x1="{zero}" y1="24" x2="{zero}" y2="{height - 4}" stroke="#888"/>')
    for i, (label, value) in enumerate(_ranked(items, lambda item: item[1])):
        out.append(lay.label(i, label))
        if value is None:
            out.append(lay.note(zero + 4, i, f"{MISSING} no reference score"))
            continue
        w = max(1.0, room * abs(value) / span)
        shown = format_score(value, decimals, signed=True)
        x = zero if value >= 0 else zero - w
        out.append(lay.bar(f"{x:.1f}", i, w, sign_colour(value, decimals), f"{label}: {shown}"))
        tx = f"{zero + w + 3 if value >= 0 else zero - w - 3:.1f}"
        anchor = "start" if value >= 0 else "end"
        out.append(lay.text(tx, i, escape(shown), f' text-anchor="{anchor}"'))
    out.append("</svg>")
    return "".join(out)


__all__ = [
    "BASELINE_COLOR",
    "DOWN_COLOR",
    "RUN_COLOR",
    "UP_COLOR",
    "Bar",
    "bar_chart",
    "delta_chart",
    "escape",
    "sign_colour",
]
