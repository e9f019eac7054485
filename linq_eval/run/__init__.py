"""One ``linq-eval run``: configuration, plan, the suite around ``mteb.evaluate``, the caches.

Public modules: ``config`` (``RunConfig``), ``runner`` (``run_suite``, ``plan_run``), ``plan``
(``Plan``, ``render_plan``), ``distributed`` (``launch``), ``prefetch``, ``summary``. The others
(``estimate``, ``cache``, ``cached_encoder``, ``cache_reuse``, ``result_store``, ``evidence``,
``progress``, ``local_data``) serve the runner.
"""

__all__ = ["config", "distributed", "plan", "prefetch", "runner", "summary"]
