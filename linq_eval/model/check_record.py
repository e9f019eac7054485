"""Where ``linq-eval check`` outcomes are kept, and what a run record says about them.

One JSON file in the user's cache (``paths.user_cache_dir() / model_checks.json``), keyed by
``model@revision``: whether every check passed, when, in which dtype on which device, and each
check's line. The runner puts :func:`check_outcome` into every run record.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linq_eval import __version__, paths
from linq_eval.atomic import atomic_write_json
from linq_eval.provenance import now

if TYPE_CHECKING:
    from linq_eval.model.check import CheckReport

_CHECKS_FILE = "model_checks.json"
"""File in the user's cache holding each model's and revision's last check."""


def _key(model: str, revision: str | None) -> str:
    return f"{model}@{revision or 'no_revision_available'}"


def _read_checks(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def save_check(report: CheckReport) -> Path:
    """Record a report's outcome under its model and revision (atomically)."""
    path = paths.user_cache_dir() / _CHECKS_FILE
    try:
        checks = _read_checks(path)
    except ValueError:
        checks = {}  # an unreadable record is replaced, not merged
    checks[_key(report.model, report.revision)] = {
        "passed": report.passed,
        "checked": now(),
        "dtype": report.dtype,
        "device": report.device,
        "linq_eval_version": __version__,
        "checks": [asdict(line) for line in report.lines],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, checks)
    return path


def check_outcome(model: str | None, revision: str | None) -> dict[str, Any]:
    """What a run record says about ``linq-eval check`` for this model and revision."""
    path = paths.user_cache_dir() / _CHECKS_FILE
    try:
        entry = _read_checks(path).get(_key(str(model), revision))
    except (OSError, ValueError):
        return {"passed": None, "note": f"{path} is unreadable"}
    if not isinstance(entry, dict):
        return {"passed": None, "note": "linq-eval check was not run for this model and revision"}
    failed = [c["name"] for c in entry.get("checks", []) if not c.get("passed")]
    keep = ("passed", "checked", "dtype", "device", "linq_eval_version")
    return {**{k: entry.get(k) for k in keep}, "failed": failed}


__all__ = ["check_outcome", "save_check"]
