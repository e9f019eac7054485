"""Reading results back: tables, comparisons, the HTML report, export.

Public modules: ``reading`` (``resolve``, ``load_results``, ``load_baselines``), ``tables``
(``build_table``), ``render`` (every table format), ``compare`` (the CI gate), ``per_query``
(the evidence format), ``export``. ``metrics``, ``text_formats``, ``report``, ``charts`` and
``query_report`` serve those.
"""

__all__ = ["compare", "export", "per_query", "reading", "render", "tables"]
