"""Which mteb versions compute each metric how, and comparisons across them.

mteb's metric code (``mteb/_evaluators``, ``mteb/abstasks``) is identical from 2.26.0 to
2.26.24 except the nAUC abstention metrics (2.26.5). A comparison whose two sides were made by
mteb versions that may compute the compared metric differently is "metric changed": shown,
kept out of the verdict unless metric changes are allowed.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
from result_files import write_results
from test_lock import INSTALL_RECORD

from linq_eval.errors import DriftError
from linq_eval.provenance import mteb_version
from linq_eval.results.compare import compare
from linq_eval.results.metrics import METRIC_PAIRS, MTEB_CHECKED, mteb_difference, mteb_release

LOCKED_INSTALL = INSTALL_RECORD.is_file() and INSTALL_RECORD.read_text().startswith("locked")
"""Whether this environment holds the lock's versions (scripts/setup.sh without --unlocked)."""

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

MODEL = "Linq-AI-Research/Linq-Embed-Mistral"


def test_the_table_states_the_versions_of_each_computation():
    assert mteb_difference("map_at_1000", "2.26.0", "2.26.24") is None
    assert mteb_difference("max_over_subqueries_map_at_1000", "2.26.3", "2.26.24") is None
    changed = mteb_difference("nauc_map_at_1000_max", "2.26.4", "2.26.24")
    assert changed and "2.26.5" in changed
    assert mteb_difference("nauc_map_at_1000_max", "2.26.5", "2.26.24") is None
    assert mteb_difference("max_over_subqueries_nauc_map_at_1000_max", "2.26.5", "2.26.4")
    outside = mteb_difference("ndcg_at_10", "2.25.0", "2.26.24")
    assert outside and "not for 2.25.0" in outside
    assert mteb_difference("ndcg_at_10", "2.26.24", "2.27.0")
    assert mteb_difference("ndcg_at_10", None, "2.27.0") is None  # unknown: not claimed
    assert mteb_difference("map", "1.12.41", "2.26.24") is None  # card era: METRIC_PAIRS
    assert all(p.mteb == MTEB_CHECKED for p in METRIC_PAIRS)


def test_installed_mteb_is_one_whose_metric_code_was_checked():
    """The lock's mteb must be one whose metric code was read. A newer release within
    pyproject's range (``setup.sh --unlocked``, ``refresh_lock.sh``) is reported, not failed:
    ``compare`` marks its results "metric changed" against checked ones until MTEB_CHECKED
    is extended, after its metric code is read."""
    installed = mteb_version()
    low, high = (mteb_release(v) for v in MTEB_CHECKED)
    if installed and low <= mteb_release(installed) <= high:
        return
    message = (
        f"mteb {installed} is installed, but linq_eval/results/metrics.py MTEB_CHECKED covers "
        f"mteb {MTEB_CHECKED[0]} to {MTEB_CHECKED[1]}: read its metric code, then extend it"
    )
    assert not LOCKED_INSTALL, message
    warnings.warn(message, stacklevel=1)
    assert mteb_difference("ndcg_at_10", installed, MTEB_CHECKED[1])  # compare says so


def _folder(root: Path, score: float, mteb_version: str | None = None) -> Path:
    """A SciFact result made by ``mteb_version`` (as the result file records it), no record."""
    folder = write_results(root, MODEL, "rev", {"SciFact": score})
    if mteb_version:
        path = folder / "SciFact.json"
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["mteb_version"] = mteb_version
        path.write_text(json.dumps(doc), encoding="utf-8")
    return root


def test_a_reference_made_by_an_unchecked_mteb_is_not_passed_as_equal(tmp_path):
    run = _folder(tmp_path / "run", 0.70)
    ref = _folder(tmp_path / "ref", 0.72, mteb_version="2.25.0")
    result = compare(str(run), str(ref), tasks=["SciFact"])
    (task,) = result.tasks
    assert task.status == "metric changed" and task.metric_changed
    assert "2.25.0" in task.mteb_change and result.passed  # shown, not gated
    assert any("Metric computed differently on SciFact" in n for n in result.notes)
    gated = compare(str(run), str(ref), tasks=["SciFact"], allow_metric_change=True)
    assert [t.task for t in gated.regressions] == ["SciFact"]


def test_checked_mteb_versions_compare_as_one_computation(tmp_path):
    run = _folder(tmp_path / "run", 0.70)
    ref = _folder(tmp_path / "ref", 0.72, mteb_version="2.26.3")
    result = compare(str(run), str(ref), tasks=["SciFact"])
    assert [t.status for t in result.tasks] == ["REGRESSION"] and not result.tasks[0].mteb_change


def test_the_run_records_mteb_version_decides(tmp_path):
    """Both sides with run records: another mteb version is drift; allowed, the computation
    is checked all the same."""
    settings = {"model": MODEL, "mteb_version": mteb_version()}
    write_results(tmp_path / "run", MODEL, "rev", {"SciFact": 0.70}, settings)
    old = {**settings, "mteb_version": "2.25.0"}
    write_results(tmp_path / "ref", MODEL, "rev", {"SciFact": 0.72}, old)
    with pytest.raises(DriftError, match="mteb_version"):
        compare(str(tmp_path / "run"), str(tmp_path / "ref"), tasks=["SciFact"])
    result = compare(
        str(tmp_path / "run"), str(tmp_path / "ref"), tasks=["SciFact"], allow_drift=True
    )
    assert result.tasks[0].status == "metric changed" and "2.25.0" in result.tasks[0].mteb_change
