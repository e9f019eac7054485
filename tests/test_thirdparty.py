"""The private names of mteb, transformers and torch linq-eval uses: each still there and doing
what the wrappers in linq_eval/thirdparty expect, or a failure naming the package version."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from linq_eval.thirdparty import mteb_private, package_version, torch_private
from linq_eval.thirdparty import transformers_private as tp

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("module", [mteb_private, tp, torch_private])
def test_every_private_name_is_there(module):
    assert module.missing_names() == []


def _why(package: str, what: str) -> str:
    return f"{package} {package_version(package)}: {what}"


def test_mteb_run_settings_are_merged_per_task_split_and_subset(tmp_path):
    path = tmp_path / "run_settings.jsonl"
    first = {"task": "SciFact", "splits": ["test"], "subsets": ["default"], "batch_size": 8}
    mteb_private.merge_run_settings(path, [first])
    again = {**first, "batch_size": 16}
    mteb_private.merge_run_settings(path, mteb_private.read_run_settings(path) + [again])
    entries = mteb_private.read_run_settings(path)
    assert [e["batch_size"] for e in entries] == [16], _why("mteb", f"merged to {entries}")
    assert json.loads(path.read_text(encoding="utf-8").splitlines()[0])["task"] == "SciFact"


def test_mteb_retrieval_scoring_and_reranking_conversion():
    scores = mteb_private.retrieval_scores(
        {"q": {"a": 0.9, "b": 0.8, "c": 0.1}}, {"q": {"b": 1, "c": 1}}, [1000]
    )
    assert scores.map["MAP@1000"] == pytest.approx((1 / 2 + 2 / 3) / 2, abs=1e-5), _why(
        "mteb", "calculate_retrieval_scores"
    )
    merged = mteb_private.max_over_subqueries(
        {"q_0": {"b": 1}, "q_1": {"b": 1}}, {"q_0": {"a": 0.9, "b": 0.1}, "q_1": {"b": 0.95}}, [1]
    )
    assert merged["max_over_subqueries_map_at_1"] == 1.0, _why("mteb", "max_over_subqueries")
    converted = mteb_private.reranking_candidates(["p1", "p2"], ["n1"], "test", 3)
    assert converted["relevance_scores"] == [1, 1, 0], _why("mteb", "_process_example")
    assert len(set(converted["doc_ids"])) == 3 and converted["query_id"] == "test_query3"


def test_transformers_attention_names(tiny):
    why = _why("transformers", "_supports_attention_backend")
    assert tp.supports_attention_backend(tiny), why
    before = tp.attn_implementation(tiny.config)
    assert before in ("sdpa", "eager"), _why("transformers", f"_attn_implementation {before!r}")
    with tp.attention_switched(tiny.config, "eager"):
        assert tp.attn_implementation(tiny.config) == "eager"
    assert tp.attn_implementation(tiny.config) == before
    assert not tp.supports_attention_backend(torch.nn.Linear(2, 2))  # the fallback: padded


def test_without_the_flash_operator_packing_falls_back(monkeypatch):
    from linq_eval.model import packed_attention

    cuda = torch.device("cuda")
    if torch_private.flash_varlen_available():
        assert "flash" in packed_attention.packed_kernels(cuda, torch.bfloat16)
    monkeypatch.setattr(packed_attention, "flash_varlen_available", lambda: False)
    assert packed_attention.packed_kernels(cuda, torch.bfloat16) == ["padded", "segments"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the flash operator runs on CUDA only")
def test_flash_varlen_matches_attention_per_input():
    q, k, v = (torch.randn(7, 2, 16, device="cuda", dtype=torch.float16) for _ in range(3))
    cu = torch.tensor([0, 3, 7], device="cuda", dtype=torch.int32)
    out = torch_private.flash_varlen(q, k, v, cu, 4, True, None)
    for a, b in ((0, 3), (3, 7)):
        want = torch.nn.functional.scaled_dot_product_attention(
            *(x[a:b].transpose(0, 1) for x in (q, k, v)), is_causal=True
        ).transpose(0, 1)
        assert torch.allclose(out[a:b], want, atol=2e-3), _why("torch", "_flash_attention_forward")


def test_private_names_live_only_in_the_wrappers():
    """No module or test outside linq_eval/thirdparty reaches for a private name of mteb,
    transformers or torch."""
    pattern = (
        r"(mteb|torch|transformers)[A-Za-z0-9_.]*\._[a-zA-Z]|\.(_attn_implementation|"
        r"_supports_attention_backend|_flash_attention_forward|_process_example|"
        r"_calculate_descriptive_statistics_from_split)\b|import _[a-z]|\"_supports_attention"
    )
    found = subprocess.run(
        ["grep", "-rnE", pattern, "linq_eval", "tests", "--include=*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    wrappers = ("linq_eval/thirdparty/", "tests/test_thirdparty.py")
    outside = [line for line in found if not line.startswith(wrappers)]
    assert outside == [], "\n".join(outside)
