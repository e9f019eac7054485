"""The throughput benchmark and its length mix: correctness and the JSON schema, not speed.

Every bench here is tiny (a 2-layer random Mistral, a few dozen texts, one repeat); the speed
numbers are in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import SCIFACT, SMOLLM2_OPTIONS, shared
from typer.testing import CliRunner

from linq_eval.bench.ablation import format_ablation, run_ablation
from linq_eval.bench.lengthmix import (
    BIG_CORPORA,
    length_mix,
    scifact_dir,
    scifact_texts,
    synthetic_word_counts,
)
from linq_eval.bench.measure import model_flops
from linq_eval.bench.throughput import BenchConfig, format_table, run_bench
from linq_eval.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
TOP_KEYS = {
    "speedup_vs_naive",
    "speedup_vs_sentence_transformers",
    "padding_efficiency",
    "tokens_per_s",
    "mfu",
    "device",
    "versions",
    "settings",
    "ways",
    "texts",
    "date",
}


@pytest.fixture(scope="module")
def small_bench() -> dict:
    return run_bench(random_init="tiny", device="cpu", n_texts=40, repeats=1, mix="both")


# ---------------------------------------------------------------------------- length mix


def test_mix_is_deterministic_and_distinct():
    for mix in ("scifact", "synthetic", "both"):
        a = length_mix(mix, 50, seed=1)
        assert a == length_mix(mix, 50, seed=1)
        assert a != length_mix(mix, 50, seed=2)
        assert len(a) == 50 and len(set(a)) == 50


def test_synthetic_lengths_follow_beir():
    counts = np.array(synthetic_word_counts(40_000, seed=0))
    sizes = np.array([c.documents for c in BIG_CORPORA], dtype=float)
    means = np.array([c.mean_words for c in BIG_CORPORA])
    expected = (sizes * means).sum() / sizes.sum()  # ~67 words
    assert abs(counts.mean() / expected - 1) < 0.03
    assert counts.min() >= 3


def test_scifact_queries_carry_the_instruction():
    """Every text is a SciFact document or a SciFact query behind e5.yaml's SciFact prompt."""
    e5 = yaml.safe_load((REPO / "task_instructions" / "e5.yaml").read_text())
    prefix = e5["template"].format(instruction=e5["tasks"]["SciFact"])
    folder = shared(SCIFACT)
    rows = [json.loads(line) for line in (folder / "corpus.jsonl").read_text().splitlines()]
    documents = {(r.get("title", "") + " " + r["text"]).strip() for r in rows}
    queries = {
        prefix + json.loads(line)["text"]
        for line in (folder / "queries.jsonl").read_text().splitlines()
    }
    texts = scifact_texts(6288, seed=0)  # 6,292 rows, 4 duplicate documents
    instructed = [t for t in texts if t in queries]
    assert 1000 < len(instructed) < 1200
    assert all(t in documents for t in texts if t not in queries)


def test_missing_scifact_names_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setenv("LINQ_EVAL_SCIFACT", str(tmp_path))
    with pytest.raises(ConfigError, match="no corpus.jsonl"):
        scifact_dir()


def test_unknown_mix_suggests():
    with pytest.raises(KeyError, match="synthetic"):
        length_mix("synthetc", 10)


# ---------------------------------------------------------------------------- bench


def test_bench_schema(small_bench):
    r = small_bench
    assert set(r) >= TOP_KEYS
    assert r["mfu"] is None and r["device"]["type"] == "cpu"
    assert set(r["ways"]) == {"linq_eval", "naive", "sentence_transformers"}
    for name, way in r["ways"].items():
        for key in (
            "seconds",
            "texts_per_s",
            "tokens_per_s",
            "padding_efficiency",
            "peak_memory_bytes",
            "tokens_computed",
        ):
            assert isinstance(way[key], (int, float)) and way[key] > 0, (name, key)
        assert way["mfu"] is None and way["tflops"] is None
    assert r["padding_efficiency"] == 1.0  # packed rows compute no padding
    assert r["ways"]["naive"]["padding_efficiency"] < 0.95
    assert r["speedup_vs_naive"] == pytest.approx(
        r["ways"]["naive"]["seconds"] / r["ways"]["linq_eval"]["seconds"], rel=1e-2
    )
    assert r["settings"]["encoder"]["attention"] == "varlen-segments"
    assert r["versions"]["torch"] and r["versions"]["transformers"]
    json.dumps(r)  # serialisable as it is


def test_all_three_ways_agree(small_bench):
    for name in ("naive", "sentence_transformers"):
        agreement = small_bench["ways"][name]["agreement_with_linq_eval"]
        assert agreement["max_abs_diff"] < 1e-5, name
        assert agreement["min_cosine"] > 0.99999, name


def test_all_three_ways_agree_on_a_trained_model(smollm2, monkeypatch):
    # SmolLM2-135M-Instruct: a real Llama-architecture decoder whose tokenizer has a chat
    # template (sentence-transformers must not apply it) and rebuilds its post-processor.
    # The session's SmolLM2 encoder stands in for the bench's own load of the same file.
    from linq_eval.bench import throughput
    from linq_eval.model.random_models import smollm2_gguf_path

    path = str(smollm2_gguf_path())

    def loaded(model, **options):
        assert model == path and options["device"] == "cpu" and options["dtype"] == "float32"
        same = ("policy", "instructions", "max_length")
        assert {k: options[k] for k in same} == {k: SMOLLM2_OPTIONS[k] for k in same}
        return smollm2

    monkeypatch.setattr(throughput, "load_encoder", loaded)
    r = run_bench(
        model=path,
        device="cpu",
        n_texts=6,
        max_length=SMOLLM2_OPTIONS["max_length"],
        repeats=1,
        mix="synthetic",
    )
    for name in ("naive", "sentence_transformers"):
        assert r["ways"][name]["agreement_with_linq_eval"]["max_abs_diff"] < 1e-4, name


def test_flops_formula():
    from linq_eval.model.random_models import random_mistral

    model = random_mistral("tiny")
    c = model.config
    linear = 2 * (64 * 64 * 2 + 64 * 32 * 2 + 64 * 128 * 3)  # q,o + k,v + gate,up,down; x2 layers
    want = 2 * linear * 10 + 2 * c.num_hidden_layers * 64 * (10 * 11)
    assert model_flops(model, [10]) == want


def test_table_mentions_every_way(small_bench):
    table = format_table(small_bench)
    for name in ("linq_eval", "naive", "sentence_transformers", "speedup_vs_naive"):
        assert name in table


def test_config_errors():
    with pytest.raises(ConfigError, match="exactly one"):
        run_bench(BenchConfig(model="x", random_init="tiny"))
    with pytest.raises(ConfigError, match="unknown ways"):
        run_bench(random_init="tiny", ways=("linq_eval", "vllm"))
    with pytest.raises(KeyError, match="tiny"):
        run_bench(random_init="tinyy")


def test_ablation_runs_every_step():
    r = run_ablation(
        random_init="tiny",
        device="cpu",
        n_texts=20,
        repeats=1,
        mix="synthetic",
        budgets=(0.5,),
    )
    names = [row["variant"] for row in r["ablation"]]
    assert names[0].startswith("naive")
    assert any("packed rows" in n for n in names)
    assert any("varlen-segments" in n for n in names)
    assert not [row for row in r["ablation"] if "failed" in row]
    assert "vs naive" in format_ablation(r)


def test_cli_writes_json(tmp_path):
    from linq_eval.cli import app

    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "--random-init",
            "tiny",
            "--device",
            "cpu",
            "--n-texts",
            "12",
            "--repeats",
            "1",
            "--mix",
            "synthetic",
            "--way",
            "linq_eval",
            "--way",
            "naive",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert set(data) >= TOP_KEYS
    assert data["speedup_vs_sentence_transformers"] is None
    assert "linq_eval" in result.output and "naive" in result.output


def test_bench_runs_without_mteb_and_datasets():
    # The GPU machine has neither: importing and running the bench must not need them.
    code = textwrap.dedent(
        """
        import sys
        sys.modules["mteb"] = None
        sys.modules["datasets"] = None
        import linq_eval.bench.throughput, linq_eval.model.encoder
        r = linq_eval.bench.throughput.run_bench(
            random_init="tiny", device="cpu", n_texts=8, repeats=1, mix="synthetic"
        )
        assert r["padding_efficiency"] == 1.0
        st = r["ways"]["sentence_transformers"]
        assert "seconds" in st or "skipped" in st["note"], st
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        check=False,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
