"""``linq-eval check``: the card example's scores, the tokenizer against sentencepiece, BOS/EOS,
and the outcome a later run records. Expected values and texts come from the reference file
``../shared/reference/card_example.json``, of which the package ships a copy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import run_cli
from conftest import CARD_EXAMPLE, shared

from linq_eval import paths
from linq_eval.atomic import FileLock
from linq_eval.model.check import (
    CardExample,
    check_scores,
    check_text_ids,
    load_card_example,
    run_checks,
    sentencepiece_reference,
    tokenizer_texts,
)
from linq_eval.model.check_record import check_outcome, save_check
from linq_eval.model.random_models import mistral_tokenizer, random_encoder


@pytest.fixture(scope="module")
def card_example_json() -> dict:
    """The reference file's content, as JSON."""
    return json.loads(shared(CARD_EXAMPLE).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def example() -> CardExample:
    return load_card_example(shared(CARD_EXAMPLE))


@pytest.fixture(scope="module")
def card_encoder():
    """The tiny random Mistral with Mistral-7B's tokenizer, at the example's max_length."""
    return random_encoder("tiny", device="cpu", max_length=4096, progress=False)


def test_packaged_copy_equals_the_reference(card_example_json):
    shipped = json.loads(paths.card_example_file().read_text(encoding="utf-8"))
    provenance = shipped.pop("provenance")
    assert shipped == card_example_json
    assert "card_example.json" in provenance and "Linq-Embed-Mistral" in provenance
    assert load_card_example() == load_card_example(CARD_EXAMPLE)


def test_random_weights_fail_the_score_check_showing_both_matrices(
    card_encoder, example, card_example_json
):
    line = check_scores(card_encoder, example)
    assert not line.passed
    expected = ", ".join(f"{v:.4f}" for v in card_example_json["expected_scores"][0])
    assert f"expected [[{expected}]," in line.detail
    got = line.detail.split(", got ")[1]
    assert got.startswith("[[") and "more than 0.05 (float32)" in line.detail


class _StubEncoder:
    """Embeddings whose cosine matrix is the card's, plus ``error`` on every score."""

    def __init__(self, example: CardExample, error: float, dtype: str) -> None:
        s = np.asarray(example.expected_scores) / 100 + error / 100
        gram = np.eye(4)
        gram[:2, 2:], gram[2:, :2] = s, s.T
        gram[0, 1] = gram[1, 0] = gram[2, 3] = gram[3, 2] = 0.3
        vectors = np.linalg.cholesky(gram)  # rows: q1, q2, p1, p2 with those inner products
        self.queries, self.passages = vectors[:2], vectors[2:]
        self.dtype = f"torch.{dtype}"
        self.profile = type("P", (), {"max_length": example.max_length})()

    def encode_texts(self, texts, **_: object) -> np.ndarray:
        return self.queries if texts[0].startswith("Instruct: ") else self.passages


@pytest.mark.parametrize(
    ("error", "dtype", "passed"),
    [
        (0.04, "float32", True),
        (0.06, "float32", False),
        (0.45, "float16", True),
        (0.55, "bfloat16", False),
    ],
)
def test_score_tolerance_by_precision(example, error, dtype, passed):
    line = check_scores(_StubEncoder(example, error, dtype), example)  # type: ignore[arg-type]
    assert line.passed is passed, line.detail


def test_offline_mistral_tokenizer_matches_sentencepiece(example):
    texts = tokenizer_texts(example)
    assert len(texts["5,000 characters"]) == 5000
    assert {"double spaces", "leading spaces", "emoji", "CJK"} <= set(texts)
    assert texts["card query 1"] == (f"Instruct: {example.task}\nQuery: {example.queries[0]}")
    line = check_text_ids(mistral_tokenizer(), sentencepiece_reference(), texts)
    assert line.passed, line.detail


def test_a_tokenizer_that_differs_fails(example):
    """Without sentencepiece's dummy prefix (the legacy ▁) the first token of a text changes."""
    from tokenizers import normalizers

    broken = mistral_tokenizer()
    broken.backend_tokenizer.normalizer = normalizers.Replace(" ", "▁")
    line = check_text_ids(broken, sentencepiece_reference(), tokenizer_texts(example))
    assert not line.passed
    assert "'card query 1'" in line.detail and "at token 0" in line.detail


def test_cli_check_prints_one_line_per_check_and_records(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("LINQ_EVAL_CACHE", str(tmp_path))
    code, out, err = run_cli(monkeypatch, capsys, "check", "--random-init", "tiny")
    assert code == 0  # random weights fail the score check as expected; the code path passes
    lines = out.splitlines()
    assert lines[0] == "linq-eval/random-mistral-tiny @ seed-0 (float32, cpu)"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "FAIL (expected",
        "PASS  tokenizer ids",
        "PASS  BOS and EOS",
    ]
    assert "card example scores" in lines[1]
    assert "max_length 512/4096" in lines[3] and str(tmp_path) in err
    outcome = check_outcome("linq-eval/random-mistral-tiny", "seed-0")
    assert outcome["passed"] is True and outcome["failed"] == ["card example scores"]
    assert check_outcome("linq-eval/random-mistral-tiny", "seed-1")["passed"] is None


def test_a_run_record_names_the_check(card_encoder, example, monkeypatch, tmp_path):
    from linq_eval.run.runner import update_run_record

    monkeypatch.setenv("LINQ_EVAL_CACHE", str(tmp_path / "cache"))
    report = run_checks(card_encoder, example, run_max_length=512)
    report.lines = [line for line in report.lines if line.name != "card example scores"]
    save_check(report)  # as if the scores had passed too
    folder = tmp_path / "run"
    lock = FileLock(tmp_path / "record.lock", what="the run record")
    record = update_run_record(
        folder,
        lock,
        card_encoder.settings(),
        allow_settings_change=False,
        prompt_hash=lambda names: "h",
        device="cpu",
    )
    assert record["model_check"]["passed"] is True and record["model_check"]["failed"] == []
    assert record["model_check"]["dtype"] == "float32"
