"""One entry point for every output format of a table: Markdown, CSV, JSON, LaTeX, HTML.

The text formats are rendered by ``linq_eval.results.text_formats``, the HTML report by
``linq_eval.results.report``; both import only downwards, and this module picks one.

Example::

    from linq_eval.results.reading import load_baselines
    from linq_eval.results.render import render
    from linq_eval.results.tables import build_table
    print(render(build_table(load_baselines()), "latex", decimals=1))
"""

from __future__ import annotations

from linq_eval.errors import ConfigError, UnknownNameError
from linq_eval.results.report import render_html
from linq_eval.results.tables import Table
from linq_eval.results.text_formats import (
    render_csv,
    render_json,
    render_latex,
    render_markdown,
)

_FORMATS = ("markdown", "csv", "json", "latex", "html")
"""The output formats of ``linq-eval table``."""


def render(
    table: Table, fmt: str = "markdown", *, per_task: bool = False, decimals: int = 2
) -> str:
    """Render a table in one of _FORMATS."""
    if decimals < 0 or decimals > 6:
        raise ConfigError(f"--round must be between 0 and 6, got {decimals}")
    if fmt == "html":
        return render_html(table, decimals=decimals)
    renderers = {
        "markdown": render_markdown,
        "csv": render_csv,
        "json": render_json,
        "latex": render_latex,
    }
    if fmt not in renderers:
        raise UnknownNameError("format", fmt, _FORMATS)
    return renderers[fmt](table, per_task=per_task, decimals=decimals)


__all__ = [
    "render",
]
