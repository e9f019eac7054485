"""Precision and input length of the reproduction profiles: float16 on CUDA as the e5
evaluation code ran, float32 on CPU, --dtype to choose, a clear error on float16 overflow;
``plan`` states max_length 512 and what 4096 would cost."""

from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import run_cli

from linq_eval.errors import ConfigError, EncodingError
from linq_eval.model.random_models import random_encoder
from linq_eval.profiles import PROFILES, profile_for_model

REPRODUCTIONS = ("linq-embed-mistral", "e5-mistral-7b-instruct", "sfr-embedding-mistral")


@pytest.mark.parametrize("name", REPRODUCTIONS)
def test_reproduction_profiles_default_to_the_e5_codes_float16(name):
    profile = PROFILES[name]
    assert profile.dtype_for("cuda") == "float16"
    assert profile.dtype_for("cpu") == "float32"
    assert profile.with_overrides(dtype="bfloat16").dtype_for("cuda") == "bfloat16"
    assert profile.with_overrides(dtype="float16").dtype_for("cpu") == "float16"  # as asked
    assert profile.max_length == 512


def test_other_models_keep_bfloat16_on_cuda(tmp_path):
    assert profile_for_model(str(tmp_path)).dtype_for("cuda") == "bfloat16"
    assert PROFILES["all-minilm-l6-v2"].dtype_for("cuda") == "float32"


def test_dtype_is_chosen_and_recorded():
    assert random_encoder("tiny", device="cpu", progress=False).settings()["dtype"] == "float32"
    enc = random_encoder("tiny", device="cpu", dtype="bfloat16", progress=False)
    assert enc.settings()["dtype"] == "bfloat16"
    with pytest.raises(ConfigError):
        random_encoder("tiny", device="cpu", dtype="float8", progress=False)


def test_float16_overflow_suggests_bfloat16():
    enc = random_encoder("tiny", device="cpu", dtype="float16", progress=False)
    assert enc.encode_texts(["fine"]).shape == (1, 64)
    with torch.no_grad():
        for layer in enc.model.layers:
            layer.mlp.down_proj.weight.mul_(1e6)  # activations far beyond float16's 65504
    with pytest.raises(EncodingError, match="float16 overflow.*--dtype bfloat16"):
        enc.encode_texts(["this overflows"])


def test_plan_states_max_length_and_the_cost_of_4096(monkeypatch, capsys, tmp_path):
    args = ["plan", "--tasks", "NFCorpus", "SciFact", "--output", str(tmp_path)]
    code, out, _ = run_cli(monkeypatch, capsys, *args)
    assert code == 0, out
    assert "# max_length 512 (the e5 evaluation code behind the published scores: 512; " in out
    assert "the model card's usage example: 4096)" in out
    assert "# at max_length 4096: about " in out and "GPU-hours at the same tokens/s" in out
    code, out, _ = run_cli(monkeypatch, capsys, *args, "--format", "json")
    doc = json.loads(out)
    longer = doc["at_card_max_length"]
    assert longer["max_length"] == 4096
    # NFCorpus's abstracts run past 512 tokens: 4096 encodes more, never less
    assert longer["tokens_to_encode"] > doc["tokens_to_encode"]
    assert longer["gpu_hours"] > doc["gpu_hours"]
