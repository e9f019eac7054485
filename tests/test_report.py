"""The HTML report: like-for-like means of a partial run, sorted signed deltas, the queries that
moved between two runs, and the page as a browser draws it (headless chromium, when installed).

The runs are constructed: mteb result files written with mteb's classes, and per-query evidence
whose means are the result files' scores, so that every number on the page can be derived here
from the inputs.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image  # a dependency of sentence-transformers (the test extra)
from result_files import write_bound_evidence, write_results

from linq_eval.results.charts import BASELINE_COLOR, DOWN_COLOR, RUN_COLOR, UP_COLOR
from linq_eval.results.per_query import DEFAULT_WORST, EvidencePart, QueryEvidence, TaskEvidence
from linq_eval.results.reading import load_baselines, load_results
from linq_eval.results.render import render
from linq_eval.results.tables import build_table

LINQ = "Linq-AI-Research/Linq-Embed-Mistral"
STS_RUN = {"STS12": 0.80, "STS13": 0.88, "STS14": 0.84, "STS15": 0.89, "STSBenchmark": 0.88}
"""An STS-only run: 5 of MTEB(eng, v1)'s 56 tasks."""
MODEL = "org/model"
QUERIES = 40
SHIFTS = {"SciFact": -0.08, "NFCorpus": 0.05, "ArguAna": 0.0}
"""Mean change of each task's per-query scores from the old run to the new (ArguAna: none)."""
WINDOW = (1400, 2000)


def _svgs(page: str) -> dict[str, str]:
    """Every chart of a page by its title."""
    found = re.findall(r'<svg [^>]*aria-label="([^"]*)">(.*?)</svg>', page, flags=re.DOTALL)
    return {html.unescape(title): body for title, body in found}


def _geometry(svg: str) -> dict[str, tuple[float, float]]:
    """Bar label -> (x, width) of every bar of a chart, as the SVG draws it."""
    found = re.findall(
        r'<rect x="([0-9.]+)" y="[0-9.]+" width="([0-9.]+)"[^>]*><title>([^<]*)</title>', svg
    )
    return {html.unescape(t).rsplit(": ", 1)[0]: (float(x), float(w)) for x, w, t in found}


def assert_lengths_proportional(geometry: dict[str, tuple[float, float]], values: dict) -> None:
    """Every bar's length is its value on one scale (to the 0.1 px the SVG is written with)."""
    assert sorted(geometry) == sorted(values)
    pairs = [(w, abs(values[label])) for label, (_, w) in geometry.items()]
    scale = sum(w * v for w, v in pairs) / sum(v * v for _, v in pairs)
    for label, (_, width) in geometry.items():
        assert width == pytest.approx(scale * abs(values[label]), abs=0.1), label


def _bars(svg: str) -> list[tuple[str, str]]:
    """(fill, tooltip) of every bar of a chart, top to bottom."""
    found = re.findall(r'<rect [^>]*fill="([^"]+)"[^>]*><title>([^<]*)</title>', svg)
    return [(fill, html.unescape(title)) for fill, title in found]


# ------------------------------------------------------------------ constructed runs


@pytest.fixture
def sts_run(tmp_path: Path) -> Path:
    write_results(tmp_path / "sts", LINQ, "ci", STS_RUN)
    return tmp_path / "sts"


def _evidence(task: str, scores: np.ndarray, tops: list[tuple[str, ...]]) -> TaskEvidence:
    queries = {
        f"q{i}": QueryEvidence(f"{task} question number {i}?", float(s), tops[i])
        for i, s in enumerate(scores)
    }
    return TaskEvidence(task, [EvidencePart("default", "test", "ndcg_at_10", queries)])


def _make_pair(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Two runs of MODEL (revisions old, new) with result files and per-query evidence;
    returns each task's (old, new) per-query scores."""
    rng = np.random.default_rng(7)
    truth = {}
    for task, shift in SHIFTS.items():
        old = rng.uniform(0.3, 0.8, QUERIES)
        new = old if shift == 0 else np.clip(old + shift + rng.normal(0, 0.1, QUERIES), 0, 1)
        truth[task] = (old, new)
    for revision, side in (("old", 0), ("new", 1)):
        scores = {task: float(pair[side].mean()) for task, pair in truth.items()}
        folder = write_results(root / revision, MODEL, revision, scores)
        for task, pair in truth.items():
            tops = [
                tuple(f"{task}-d{i}-{k}" for k in range(10))
                if side == 0 or s >= o
                # a query that lost: its last three documents replaced
                else tuple(f"{task}-d{i}-{k}" for k in range(7)) + (f"x{i}a", f"x{i}b", f"x{i}c")
                for i, (o, s) in enumerate(zip(pair[0], pair[1], strict=True))
            ]
            write_bound_evidence(folder, _evidence(task, pair[side], tops))
    return truth


@pytest.fixture
def run_pair(tmp_path: Path):
    truth = _make_pair(tmp_path)
    sets = load_results(tmp_path / "new") + load_results(tmp_path / "old")
    table = build_table(sets, reference=f"{MODEL}@old")
    return table, truth


# ------------------------------------------------------------------ partial runs


def test_partial_run_gets_like_for_like_means_in_every_format(sts_run):
    table = build_table(load_results(sts_run) + load_baselines(), reference=f"published:{LINQ}")
    column = "Mean (5 tasks of Linq-Embed-Mistral @ci)"
    assert table.columns[-1] == column
    published, run = table.rows[0], table.rows[1]  # the re-run follows its published row
    expected = {
        row.label: sum(row.scores[t].score for t in STS_RUN) / len(STS_RUN) for row in table.rows
    }
    assert run.means[column].complete and not run.means["Average (56)"].complete
    assert run.means[column].value == pytest.approx(100 * sum(STS_RUN.values()) / 5)
    for row in table.rows:
        assert row.means[column].value == pytest.approx(expected[row.label]), row.label
    md = render(table, "markdown")
    delta = run.means[column].value - published.means[column].value
    assert f"| 85.80 | — | — | {delta:+.2f} |" in md  # the run's Δ exists only like for like
    assert "every row's mean over the 5 tasks that Linq-Embed-Mistral @ci has" in md
    csv_text = render(table, "csv")
    assert column in csv_text.splitlines()[0]
    assert f"{expected['NV-Embed-v1']:.2f}" in csv_text
    doc = json.loads(render(table, "json"))
    assert doc["task_sets"] == {column: list(STS_RUN)}
    assert doc["rows"][2][column] == round(expected["NV-Embed-v1"], 2)
    assert column in render(table, "latex")


def test_complete_tables_have_no_extra_column():
    table = build_table(load_baselines())
    assert table.subsets == [] and "tasks of" not in render(table, "markdown")


def test_report_never_draws_a_partial_mean_beside_complete_ones(sts_run):
    table = build_table(load_results(sts_run) + load_baselines())
    page = render(table, "html")
    charts = _svgs(page)
    run_label = "Linq-Embed-Mistral @ci"
    like = charts["Mean (5 tasks of Linq-Embed-Mistral @ci)"]
    assert next(iter(charts)) == "Mean (5 tasks of Linq-Embed-Mistral @ci)"  # shown first
    bars = _bars(like)
    assert len(bars) == 12 and bars[0][1] == "voyage-lite-02-instruct: 87.89"  # ranked
    assert (RUN_COLOR, f"{run_label}: 85.80") in bars
    values = [float(t.rsplit(": ", 1)[1]) for _, t in bars]
    assert values == sorted(values, reverse=True)
    # bar lengths are the means, on one scale (0..100) in every chart, from one left edge
    like_means = {row.label: row.means[table.columns[-1]].value for row in table.rows}
    assert_lengths_proportional(_geometry(like), like_means)
    average_means = {
        row.label: row.means["Average (56)"].value for row in table.rows if row.label != run_label
    }
    assert_lengths_proportional(_geometry(charts["Average (56)"]), average_means)
    widths = [
        w / v
        for g, m in (
            (_geometry(like), like_means),
            (_geometry(charts["Average (56)"]), average_means),
        )
        for (_, w), v in ((g[k], m[k]) for k in g)
    ]
    assert max(widths) - min(widths) < 0.01 and len({x for x, _ in _geometry(like).values()}) == 1
    average = charts["Average (56)"]
    assert all(not t.startswith(run_label) for _, t in _bars(average))
    assert "85.80 (5/56): incomplete, not drawn" in average
    assert len(_bars(average)) == 11 and {f for f, _ in _bars(average)} == {BASELINE_COLOR}


# ------------------------------------------------------------------ run against run


def test_delta_chart_is_sorted_and_coloured_by_sign(run_pair):
    table, truth = run_pair
    page = render(table, "html")
    chart = _svgs(page)["model @new minus model @old, per task (points x100)"]
    bars = _bars(chart)
    expected = sorted(
        ((t, 100 * (new.mean() - old.mean())) for t, (old, new) in truth.items()),
        key=lambda x: -x[1],
    )
    assert [t.split(":")[0] for _, t in bars] == [t for t, _ in expected]
    assert [f for f, _ in bars] == [UP_COLOR, "#999999", DOWN_COLOR]
    assert bars[2][1] == f"SciFact: {expected[2][1]:+.2f}"
    # lengths are the differences on one scale; gains right of the zero line, losses left
    geometry = _geometry(chart)
    moved = {t: d for t, d in expected if t != "ArguAna"}
    assert_lengths_proportional({t: geometry[t] for t in moved}, moved)
    zero = geometry["NFCorpus"][0]
    x, width = geometry["SciFact"]
    assert x + width == pytest.approx(zero, abs=0.11) and geometry["ArguAna"] == (zero, 1.0)


def test_per_query_tables_name_the_queries_that_lost_most(run_pair):
    table, truth = run_pair
    page = render(table, "html")
    sections = re.findall(r"<h3>model @new: (\w+)</h3>(.*?)(?=<h3>|<h2>)", page, flags=re.DOTALL)
    assert [task for task, _ in sections] == ["SciFact", "NFCorpus"]  # ArguAna did not move
    text = dict(sections)["SciFact"]
    old, new = truth["SciFact"]
    deltas = new - old
    up, down = int((deltas > 1e-9).sum()), int((deltas < -1e-9).sum())
    assert f"{QUERIES} queries: <b>{up} up</b>, <b>{down} down</b>" in text
    assert re.search(r"p = (0\.000\d|[0-9.]+e-0\d)", text), text  # a shift of 8 points
    worst = np.argsort(deltas, kind="stable")[:DEFAULT_WORST]
    rows = re.findall(r"<tr><td>(q\d+)</td>(.*?)</tr>", text, flags=re.DOTALL)
    assert [q for q, _ in rows] == [f"q{i}" for i in worst]
    first_id, first = rows[0]
    i = int(first_id[1:])
    assert f"SciFact question number {i}?" in first
    assert f">{100 * old[i]:.2f}<" in first and f">{100 * new[i]:.2f}<" in first
    assert f"x{i}a, x{i}b, x{i}c" in first  # entered the top 10
    assert f"SciFact-d{i}-7, SciFact-d{i}-8, SciFact-d{i}-9" in first  # left it


def test_baselines_without_evidence_say_so(sts_run):
    page = render(build_table(load_results(sts_run) + load_baselines()), "html")
    assert "no task with per-query evidence in both it and Linq-Embed-Mistral (published)" in page


# ------------------------------------------------------------------ in a browser


def _screenshot(page: str, tmp_path: Path, name: str) -> Image.Image:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    source, png = tmp_path / f"{name}.html", tmp_path / f"{name}.png"
    source.write_text(page, encoding="utf-8")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]
    subprocess.run(
        [
            chromium,
            *flags,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={png}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            source.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert png.is_file(), f"chromium wrote no screenshot {png}"
    return Image.open(png).convert("RGB")


def _pixels(image: Image.Image, colour: str) -> int:
    rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return int(np.all(np.asarray(image) == rgb, axis=-1).sum())


def test_chromium_draws_the_reports(sts_run, run_pair, tmp_path):
    partial = _screenshot(
        render(build_table(load_results(sts_run) + load_baselines()), "html"), tmp_path, "partial"
    )
    assert partial.size == WINDOW
    assert len(partial.getcolors(maxcolors=1 << 20) or []) > 50  # text and charts, not blank
    assert _pixels(partial, RUN_COLOR) > 500 and _pixels(partial, BASELINE_COLOR) > 20_000
    pair = _screenshot(render(run_pair[0], "html"), tmp_path, "pair")
    assert pair.size == WINDOW
    # the delta chart's green and red bars, and the per-query tables' coloured changes
    assert _pixels(pair, UP_COLOR) > 300 and _pixels(pair, DOWN_COLOR) > 300
