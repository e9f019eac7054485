"""One entry point for every output format of a table: Markdown, CSV, JSON and LaTeX
(``text_formats``), HTML (``report``).

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
from linq_eval.results.text_formats import render_csv, render_json, render_latex, render_markdown

_TEXT_FORMATS = {
    "markdown": render_markdown,
    "csv": render_csv,
    "json": render_json,
    "latex": render_latex,
}
"""The output formats of ``linq-eval table`` but ``html``."""


def render(
    table: Table, fmt: str = "markdown", *, per_task: bool = False, decimals: int = 2
) -> str:
    """Render a table in one of the formats of ``linq-eval table``."""
    if decimals < 0 or decimals > 6:
        raise ConfigError(f"--round must be between 0 and 6, got {decimals}")
    if fmt == "html":
        return render_html(table, decimals=decimals)
    if fmt not in _TEXT_FORMATS:
        raise UnknownNameError("format", fmt, [*_TEXT_FORMATS, "html"])
    return _TEXT_FORMATS[fmt](table, per_task=per_task, decimals=decimals)


__all__ = ["render"]
