"""Per-query evidence (what a run keeps, what compare reads) and the suite's progress view."""

from __future__ import annotations

import gzip
import io
import json

import numpy as np
import pytest
from cli_helpers import run_cli
from conftest import SCIFACT, shared, tiny_scifact_args
from data_helpers import write_jsonl
from result_files import write_bound_evidence, write_results

from linq_eval.results.per_query import (
    Binding,
    EvidencePart,
    QueryEvidence,
    TaskEvidence,
    diff_task,
    evidence_path,
    paired_permutation_p,
    part_evidence,
    read_evidence,
    write_evidence,
)
from linq_eval.run.progress import SuiteProgress
from linq_eval.thirdparty import mteb_private

RANKING = {
    "q1": {"d1": 0.9, "d2": 0.5, "d3": 0.1, "q1": 0.95},
    "q2": {"d1": 0.2, "d3": 0.8},
    "q3": {"d4": 0.7, "d2": 0.6},
}
QRELS = {"q1": {"d2": 1}, "q2": {"d3": 1}, "q3": {"d2": 2, "d4": 0}, "q4": {"d1": 0}}


def test_per_query_scores_average_to_mtebs_score():
    part = part_evidence(
        RANKING, QRELS, {"q1": "one"}, metric="ndcg_at_10", subset="default", split="test"
    )
    # q4 has no positive document: mteb leaves it out of the mean, so do we
    assert set(part.queries) == {"q1", "q2", "q3"}
    positives = {q: d for q, d in QRELS.items() if q != "q4"}
    expected = mteb_private.retrieval_scores(RANKING, positives, [10]).ndcg["NDCG@10"]
    assert part.mean() == pytest.approx(expected, abs=1e-5)
    assert part.queries["q1"].top == ("q1", "d1", "d2", "d3") and part.queries["q1"].text == "one"


def test_identical_ids_and_the_first_result_are_dropped_as_the_task_says():
    kept = part_evidence(RANKING, QRELS, {}, metric="ndcg_at_10", subset="s", split="t")
    dropped = part_evidence(
        RANKING, QRELS, {}, metric="ndcg_at_10", subset="s", split="t", ignore_identical_ids=True
    )
    assert "q1" not in dropped.queries["q1"].top
    assert dropped.queries["q1"].score > kept.queries["q1"].score  # d2 moved up a rank
    skipped = part_evidence(
        RANKING, QRELS, {}, metric="ndcg_at_10", subset="s", split="t", skip_first_result=True
    )
    assert skipped.queries["q2"].top == ("d1",)


def test_other_metrics_and_the_fallback():
    part = part_evidence(RANKING, QRELS, {}, metric="map_at_1000", subset="s", split="t")
    assert part.metric == "map_at_1000" and part.queries["q2"].score == 1.0
    odd = part_evidence(
        RANKING, QRELS, {}, metric="max_over_subqueries_map_at_1000", subset="s", split="t"
    )
    assert odd.metric == "ndcg_at_10"


def evidence(scores: dict[str, float], tops: dict[str, tuple[str, ...]] | None = None):
    tops = tops or {}
    queries = {q: QueryEvidence(f"text {q}", s, tops.get(q, ("a", "b"))) for q, s in scores.items()}
    return TaskEvidence("T", [EvidencePart("default", "test", "ndcg_at_10", queries)])


def test_diff_counts_ranks_losers_and_names_documents_that_moved():
    before = evidence({"a": 0.9, "b": 0.5, "c": 0.3, "d": 0.7}, {"a": ("x", "y", "z")})
    after = evidence({"a": 0.2, "b": 0.5, "c": 0.4, "d": 0.6, "e": 1.0}, {"a": ("x", "w", "v")})
    diff = diff_task(after, before, worst=2)
    assert (diff.queries, diff.up, diff.down, diff.unchanged) == (4, 1, 2, 1)
    assert diff.only_in_one == 1
    assert [c.query_id for c in diff.worst] == ["a", "d"]
    assert diff.worst[0].entered == ("w", "v") and diff.worst[0].left == ("y", "z")
    assert diff.worst[0].before == 0.9 and diff.worst[0].after == 0.2
    assert diff.mean_delta == pytest.approx((-0.7 + 0 + 0.1 - 0.1) / 4)
    assert json.loads(json.dumps(diff.as_dict()))["worst"][0]["text"] == "text a"


def test_permutation_test_tells_noise_from_a_shift():
    rng = np.random.default_rng(0)
    assert paired_permutation_p(np.zeros(50)) == 1.0
    assert paired_permutation_p(rng.normal(0, 0.1, 300)) > 0.05
    assert paired_permutation_p(rng.normal(-0.05, 0.1, 300)) < 0.001
    assert paired_permutation_p([0.1, -0.1] * 10) == 1.0
    # deterministic for a seed
    d = rng.normal(-0.01, 0.1, 100)
    assert paired_permutation_p(d, seed=3) == paired_permutation_p(d, seed=3)


def test_evidence_round_trips_through_a_compact_file(tmp_path):
    ev = evidence({f"q{i}": i / 100 for i in range(100)})
    ev.binding = Binding("T.json", "0" * 64, 0.495, "h" * 16, 100)
    path = write_evidence(tmp_path, ev)
    assert path == evidence_path(tmp_path, "T") and path.name == "T.queries.json.gz"
    assert read_evidence(tmp_path, "T").as_dict() == ev.as_dict()
    assert read_evidence(tmp_path, "Other") is None
    assert write_evidence(tmp_path, ev).read_bytes() == path.read_bytes()  # reproducible
    assert json.loads(gzip.decompress(path.read_bytes()))["format"] == 2
    with pytest.raises(ValueError, match="not bound"):
        write_evidence(tmp_path, evidence({"q": 0.5}))


def test_progress_in_a_log_is_plain_lines_with_eta():
    clock = [0.0]
    out = io.StringIO()
    p = SuiteProgress(
        [("A", 1000), ("B", 3000), ("C", 0)],
        stream=out,
        tty=False,
        interval_s=5,
        clock=lambda: clock[0],
    )
    p.skip("C")
    p.start("A")
    clock[0] = 2
    p.encoded(500)  # within the interval: no line
    clock[0] = 10
    p.encoded(1000)
    p.finish("A")
    p.start("B")
    clock[0] = 20
    p.encoded(2500)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0].startswith("[1/3 tasks]") and lines[0].endswith("(C done earlier)")
    assert "[2/3 tasks]  2.5k/4.0k tokens" in lines[-1] and "| B 50%" in lines[-1]
    assert "ETA 12s" in lines[-1]  # 1.5k of 4.0k left at 2.5k tokens per 20 s
    assert len(lines) == 6


def test_quiet_progress_prints_nothing():
    out = io.StringIO()
    p = SuiteProgress([("A", 10)], stream=out, quiet=True)
    p.start("A")
    p.finish("A")
    assert out.getvalue() == ""


@pytest.fixture(scope="module")
def small_retrieval(tmp_path_factory):
    """A SciFact subset as a BEIR folder: 20 qrels lines, their documents plus 80 others."""
    folder = tmp_path_factory.mktemp("data") / "scifact"
    src = shared(SCIFACT)
    qrels = (src / "qrels" / "test.tsv").read_text().splitlines()
    head, rows = qrels[0], qrels[1:21]
    wanted_q = {r.split("\t")[0] for r in rows}
    wanted_d = {r.split("\t")[1] for r in rows}
    corpus = [json.loads(line) for line in (src / "corpus.jsonl").read_text().splitlines()]
    docs = [d for d in corpus if d["_id"] in wanted_d] + [
        d for d in corpus[:200] if d["_id"] not in wanted_d
    ][:80]
    queries = [json.loads(line) for line in (src / "queries.jsonl").read_text().splitlines()]
    write_jsonl(folder / "corpus.jsonl", docs)
    write_jsonl(folder / "queries.jsonl", [q for q in queries if q["_id"] in wanted_q])
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("\n".join([head, *rows]) + "\n")
    return folder.parent


def test_a_run_keeps_evidence_whose_mean_is_the_score_and_shows_progress(
    small_retrieval, tmp_path, monkeypatch, capsys
):
    args = ("run", *tiny_scifact_args(small_retrieval, "--no-progress"))
    code, out, err = run_cli(monkeypatch, capsys, *args, "--output", str(tmp_path / "a"))
    assert code == 0, out + err
    folder = next((tmp_path / "a").glob("*/*/SciFact.json")).parent
    ev = read_evidence(folder, "SciFact")
    score = json.loads((folder / "SciFact.json").read_text())["scores"]["test"][0]["ndcg_at_10"]
    written = (small_retrieval / "scifact" / "queries.jsonl").read_text().splitlines()
    assert len(ev.parts[0].queries) == len(written) == 18  # 20 qrels lines, 18 queries
    assert ev.parts[0].mean() == pytest.approx(score, abs=1e-5)
    assert all(len(q.top) == 10 for q in ev.parts[0].queries.values())
    assert not list((tmp_path / "a" / ".linq_eval" / "scratch").glob("*/*_predictions.json"))
    # the suite's progress: plain lines on stderr (not a TTY), with ETA
    progress = [line for line in err.splitlines() if line.startswith("[")]
    assert progress and all("ETA" in line for line in progress) and "\r" not in err
    assert progress[-1].startswith("[1/1 tasks]")

    code, out, err = run_cli(
        monkeypatch, capsys, *args, "--output", str(tmp_path / "b"), "--no-per-query", "--quiet"
    )
    assert code == 0, out + err
    assert not list((tmp_path / "b").glob("*/*/*.queries.json.gz"))
    assert "ETA" not in err


# --------------------------------------------------------------------------- compare --per-query


def run_with_evidence(root, scores: dict[str, float]):
    """A run folder holding SciFact with per-query evidence ``scores`` (its score their mean,
    as a run writes it)."""
    folder = write_results(
        root, "org/model", "rev", {"SciFact": float(np.mean(list(scores.values())))}
    )
    ev = evidence(scores, {q: (f"d{q}", "shared") for q in scores})
    write_bound_evidence(folder, TaskEvidence("SciFact", ev.parts))
    return root


def centred(values: dict[str, float], noise: np.ndarray, shift: float) -> dict[str, float]:
    """``values`` plus ``noise`` moved to mean zero, plus ``shift``: a known mean change."""
    noise = noise - noise.mean()
    return {q: v + float(n) + shift for (q, v), n in zip(values.items(), noise, strict=True)}


def test_compare_per_query_names_the_losers_and_tests_significance(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    before = {f"q{i}": float(s) for i, s in enumerate(rng.uniform(0.3, 0.9, 200))}
    noisy = centred(before, rng.normal(0, 0.3, len(before)), -0.01)  # a drop of 1 point
    shifted = {q: s - 0.08 for q, s in before.items()}
    shifted["q7"] = before["q7"] - 0.6  # the worst loser
    ref = run_with_evidence(tmp_path / "ref", before)
    drop = run_with_evidence(tmp_path / "drop", shifted)
    noise = run_with_evidence(tmp_path / "noise", noisy)

    args = ("compare", str(drop), "--reference", str(ref), "--tasks", "SciFact")
    code, out, err = run_cli(monkeypatch, capsys, *args, "--per-query")
    assert code == 1, out + err
    assert "per query: SciFact (ndcg_at_10, 200 queries): 0 up, 200 down, 0 unchanged" in out
    assert "query q7: 'text q7'  " in out and "-60.00" in out and "p = 0.0001" in out

    code, out, _ = run_cli(monkeypatch, capsys, *args, "--per-query", "--format", "json")
    doc = json.loads(out)["per_query"]["SciFact"]
    assert doc["down"] == 200 and doc["worst"][0]["query_id"] == "q7" and doc["p_value"] < 0.001
    # a drop of 1 point whose queries move every which way: noise, not a regression
    noise_args = ("compare", str(noise), "--reference", str(ref), "--tasks", "SciFact")
    code, out, _ = run_cli(monkeypatch, capsys, *noise_args, "--tolerance", "0.5")
    assert code == 1 and "REGRESSION" in out
    code, out, _ = run_cli(monkeypatch, capsys, *noise_args, "--require-significant")
    assert code == 0 and "not significant" in out, out
    code, out, _ = run_cli(
        monkeypatch, capsys, *args, "--require-significant", "--format", "markdown"
    )
    assert code == 1 and "| -60.00 | q7 | text q7 |" in out
    # against a baseline (no evidence) the gate says significance was not tested
    code, out, _ = run_cli(
        monkeypatch,
        capsys,
        "compare",
        str(drop),
        "--reference",
        "published:Linq-AI-Research/Linq-Embed-Mistral",
        "--tasks",
        "SciFact",
        "--require-significant",
        "--allow-drift",
    )
    assert code == 1 and "significance not tested" in out


def test_compare_alpha_sets_the_significance_level(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(1)
    before = {f"q{i}": float(s) for i, s in enumerate(rng.uniform(0.3, 0.9, 200))}
    after = centred(before, rng.normal(0, 0.1, len(before)), -0.01)
    ref = run_with_evidence(tmp_path / "ref", before)
    run = run_with_evidence(tmp_path / "run", after)
    args = (
        "compare",
        str(run),
        "--reference",
        str(ref),
        "--tasks",
        "SciFact",
        "--tolerance",
        "0.5",
        "--require-significant",
    )
    code, out, _ = run_cli(monkeypatch, capsys, *args, "--format", "json")
    doc = json.loads(out)
    p_value = doc["per_query"]["SciFact"]["p_value"]
    assert 0.001 < p_value < 0.9 and doc["alpha"] == 0.05
    for alpha, code_wanted in ((p_value / 2, 0), (min(0.99, p_value * 1.5), 1)):
        code, out, _ = run_cli(monkeypatch, capsys, *args, "--alpha", str(alpha))
        assert code == code_wanted, (alpha, p_value, out)
        assert ("not significant" in out) == (code_wanted == 0), out
    for bad in ("0", "1", "1.5"):
        code, _, err = run_cli(monkeypatch, capsys, *args, "--alpha", bad)
        assert code == 2 and "error: --alpha must be between 0 and 1" in err, err


@pytest.mark.slow
def test_per_query_gate_on_a_real_run_at_a_shorter_max_length(
    minilm_run, minilm_short_run, monkeypatch, capsys
):
    """SciFact with all-MiniLM-L6-v2 at 256 tokens against 32 tokens (the shared runs)."""
    full, _ = minilm_run
    short = minilm_short_run
    compare_args = ("compare", str(short), "--reference", str(full), "--tasks", "SciFact")
    compare_args += ("--per-query", "--allow-drift")
    code, out, _ = run_cli(monkeypatch, capsys, *compare_args, "--format", "json")
    assert code == 1, out
    doc = json.loads(out)
    (task,) = doc["tasks"]
    assert task["status"] == "REGRESSION" and task["delta"] < -0.5
    diff = doc["per_query"]["SciFact"]
    assert diff["queries"] == 300 and diff["down"] > diff["up"] > 0
    assert diff["up"] + diff["down"] + diff["unchanged"] == 300
    assert diff["p_value"] < 0.05
    assert 100 * diff["mean_delta"] == pytest.approx(task["delta"], abs=0.01)
    worst = diff["worst"][0]
    assert worst["after"] < worst["before"] and worst["text"] and worst["left"]
    said = (
        f"SciFact 32 vs 256 tokens: {task['run']} vs {task['reference']}, "
        f"{diff['up']} up / {diff['down']} down / {diff['unchanged']} same, "
        f"p = {diff['p_value']:.4g}; worst {worst['query_id']} "
        f"{worst['before']:.3f} -> {worst['after']:.3f}"
    )
    code, text, _ = run_cli(monkeypatch, capsys, *compare_args, "--require-significant")
    assert code == 1 and "per query: SciFact" in text and "FAIL: 1 regression(s) (SciFact" in text
    size = sum(p.stat().st_size for p in full.glob("*/*/SciFact.queries.json.gz"))
    assert 0 < size < 300_000
    print(f"\n{said}\nSciFact evidence: {size:,} bytes")  # after the last run_cli: shown by -s
