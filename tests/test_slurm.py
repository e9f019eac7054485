"""``scripts/slurm_array.sh`` under a real one-node Slurm (munged, slurmctld and slurmd on
localhost, see ``slurm_cluster``): a 2-job array of all-MiniLM-L6-v2 on STS13 and STS16 (CPU)
fills one shared folder exactly as one uninterrupted ``linq-eval run`` does, and so does an
array whose first job is cancelled mid-encoding and resubmitted.

Skipped where Debian's ``slurm-wlm`` and ``munge`` are not installed or the tests do not run as
root; ``.ci/run`` installs both. The commands are those of README's "More GPUs, more nodes".
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import (
    MINILM_FOLDER,
    MINILM_STS_ARGS,
    PUBLISHED_MINILM_STS,
    REPO_ROOT,
    STS_DATA,
    TIMING_FIELDS,
)
from slurm_cluster import Cluster, ClusterError, one_node_cluster, unavailable, write_config

from linq_eval.paths import CACHE_SUBDIR
from linq_eval.results.reading import read_run_record

SCRIPT = REPO_ROOT / "scripts" / "slurm_array.sh"
SHARDS = {"1": "STS13", "2": "STS16"}  # what `linq-eval plan --shard i/2` gives each job
SBATCH = ("--gpus-per-node=0", "--cpus-per-task=1", str(SCRIPT))
RECORD_FIELDS = ("main_score", "settings", "texts", "data_source", "dataset_revision")
"""Run-record fields of a task that a sharded or resumed run must share with one run."""
WAIT_S = 600


@pytest.fixture
def cluster():
    """A one-node cluster in a short temporary folder (munge's socket path must stay short),
    stopped and removed when the test ends, passed or failed."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="linq-slurm-"))
    try:
        with one_node_cluster(root) as running:
            yield running
        assert not running.leftover_pids()
    finally:
        shutil.rmtree(root, ignore_errors=True)


SCRIPT_ENV = {
    "MODEL": "all-minilm-l6-v2",
    "TASKS": " ".join(SHARDS.values()),
    "DATA_DIR": str(STS_DATA),
    "DEVICES": "cpu",
    "RUN_ARGS": "--chunk-texts 512",
}
"""README's CPU example: the script's variables for the reference run's MINILM_STS_ARGS."""
SCRIPT_VARS = (
    "MODEL",
    "BENCHMARK",
    "TASKS",
    "OUTPUT",
    "CACHE_DIR",
    "DATA_DIR",
    "DEVICES",
    "SHARD_COUNT",
    "RUN_ARGS",
    "OMP_NUM_THREADS",
)
"""Every variable the script reads (none comes from the test's own environment)."""


def test_the_script_variables_ask_for_the_reference_run():
    """What slurm_array.sh passes to `linq-eval run` for SCRIPT_ENV (less --output and
    --shard) is MINILM_STS_ARGS, so the array and the reference run are the same command."""
    e = SCRIPT_ENV
    args = (
        "--model",
        e["MODEL"],
        "--tasks",
        *e["TASKS"].split(),
        "--data-dir",
        e["DATA_DIR"],
        "--device",
        e["DEVICES"],
        *e["RUN_ARGS"].split(),
        "--no-progress",
    )
    assert args == MINILM_STS_ARGS
    script = SCRIPT.read_text()
    for line in (
        'common+=(--tasks "${names[@]}")',
        'run_args+=(--data-dir "$DATA_DIR")',
        "run_args+=(--device cpu)",
        '"${extra[@]}" --no-progress',
    ):
        assert line in script


def job_env(output: Path, **extra: str) -> dict[str, str]:
    """The submitting shell's environment: this checkout's linq-eval, SCRIPT_ENV, OUTPUT."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    outer = {k: v for k, v in os.environ.items() if k not in SCRIPT_VARS}
    return {
        **outer,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": path,
        **SCRIPT_ENV,
        "OUTPUT": str(output),
        **extra,
    }


def job_log(workdir: Path, job: str, index: str) -> str:
    path = workdir / "logs" / f"linq-eval-{job}_{index}.out"
    return path.read_text(errors="replace") if path.exists() else f"(no log at {path})"


def all_logs(workdir: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
        for p in sorted((workdir / "logs").glob("*.out"))
    )


def files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def without_timing(path: Path) -> dict:
    """A task result or cache sidecar without the fields that say when it was made."""
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if k not in (*TIMING_FIELDS, "created")}


def assert_same_folder(one: Path, other: Path) -> None:
    """``other`` holds the files of ``one`` with the same scores: task results equal but for
    their timings, model meta and embedding cache byte for byte, the run records equal in
    settings and in each task's score, settings, texts and data."""
    a, b = files(one), files(other)
    assert sorted(b) == sorted(a)
    results = {str(MINILM_FOLDER / f"{task}.json") for task in SHARDS.values()}
    for name, path in a.items():
        if name.endswith((".npy", "identity.json", "model_meta.json")):
            assert b[name].read_bytes() == path.read_bytes(), name
        elif name in results or (name.startswith(CACHE_SUBDIR) and name.endswith(".json")):
            assert without_timing(b[name]) == without_timing(path), name
    ra, rb = read_run_record(one / MINILM_FOLDER), read_run_record(other / MINILM_FOLDER)
    assert rb["settings"] == ra["settings"]
    assert set(rb["tasks"]) == set(ra["tasks"]) == set(SHARDS.values())
    for task, entry in ra["tasks"].items():
        assert {k: rb["tasks"][task][k] for k in RECORD_FIELDS} == {
            k: entry[k] for k in RECORD_FIELDS
        }, task


@pytest.mark.slurm
@pytest.mark.slow
def test_slurm_array_equals_one_run_and_a_cancelled_job_resumes(cluster, minilm_sts_run, tmp_path):
    t0 = time.monotonic()
    reference = minilm_sts_run
    record = read_run_record(reference / MINILM_FOLDER)
    for task, published in PUBLISHED_MINILM_STS.items():
        assert 100 * record["tasks"][task]["main_score"] == pytest.approx(published, abs=0.005)
    assert record["tasks"]["STS13"]["texts"] == 3000 and record["tasks"]["STS16"]["texts"] == 2372
    (tmp_path / "logs").mkdir()

    # the array, uninterrupted: each job logs its tasks, the folder equals the single run's
    whole = tmp_path / "whole"
    job = cluster.sbatch("--array=1-2", *SBATCH, env=job_env(whole), cwd=tmp_path)
    states = cluster.wait(job, WAIT_S)
    assert states == {"1": "COMPLETED", "2": "COMPLETED"}, all_logs(tmp_path)
    for index, task in SHARDS.items():
        log = job_log(tmp_path, job, index)
        assert f"CPU threads: 1, shard {index}/2\n" in log  # torch on the job's one CPU
        assert f"\nshard {index}/2: 1 of 2 tasks: {task}\n" in log
    assert_same_folder(reference, whole)

    # job 1 cancelled mid-encoding (its jobs one at a time, so the first chunk is its own)
    cut = tmp_path / "cut"
    job = cluster.sbatch("--array=1-2%1", *SBATCH, env=job_env(cut), cwd=tmp_path)
    chunks = cut / CACHE_SUBDIR
    deadline = time.monotonic() + WAIT_S
    while not list(chunks.glob("*/chunks/*.json")):
        state = cluster.states(job).get("1", "PENDING")  # not split off the array yet: pending
        assert state in ("PENDING", "RUNNING"), all_logs(tmp_path)
        if time.monotonic() > deadline:
            raise ClusterError(f"no cache chunk after {WAIT_S} s\n{all_logs(tmp_path)}")
        time.sleep(0.2)
    cluster.command("scancel", f"{job}_1")
    states = cluster.wait(job, WAIT_S)
    assert states == {"1": "CANCELLED", "2": "COMPLETED"}, all_logs(tmp_path)
    assert not (cut / MINILM_FOLDER / "STS13.json").exists()
    assert (cut / MINILM_FOLDER / "STS16.json").exists()

    # the same index resubmitted with the array's size: it resumes from the cached chunks
    again = cluster.sbatch("--array=1", *SBATCH, env=job_env(cut, SHARD_COUNT="2"), cwd=tmp_path)
    assert cluster.wait(again, WAIT_S) == {"1": "COMPLETED"}, all_logs(tmp_path)
    assert "\nshard 1/2: 1 of 2 tasks: STS13\n" in job_log(tmp_path, again, "1")
    entry, first = read_run_record(cut / MINILM_FOLDER)["tasks"]["STS13"], record["tasks"]["STS13"]
    assert entry["cached_texts"] >= first["cached_texts"] + 512, (entry, first)  # a chunk kept
    unique = {e["cached_texts"] + e["encoded_texts"] for e in (entry, first)}
    assert len(unique) == 1, (entry, first)
    assert_same_folder(reference, cut)
    print(f"\nSlurm array test: {time.monotonic() - t0:.0f} s after the reference run")


@pytest.mark.slurm
def test_a_cluster_that_cannot_start_fails_at_once_with_its_log(tmp_path):
    """slurmctld exiting at start (a plugin that does not exist) is a ClusterError carrying
    its log, not a hang: the error says slurmctld stopped, which only its exit raises (waiting
    out the start's timeout raises "no ... after"); the daemons that did start are stopped.
    The timeout is a generous guard against a hang, not a measure of speed."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="linq-slurm-"))
    try:
        conf = write_config(root)
        text = conf.read_text().replace("select/cons_tres", "select/no_such_plugin")
        conf.write_text(text)
        cluster = Cluster(root, conf)
        with pytest.raises(ClusterError, match="slurmctld.*stopped") as err:
            cluster.start(timeout=WAIT_S)
        cluster.stop()
        assert "fatal: Can't find plugin for select/no_such_plugin" in str(err.value)
        assert all(p.poll() is not None for p in cluster.procs.values())
        assert not cluster.leftover_pids()
    finally:
        shutil.rmtree(root, ignore_errors=True)
