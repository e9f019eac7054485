"""``linq-eval check``: model, tokenizer, precision and pooling checked in a minute, before a
full run takes GPU-days: the model card's example scores (``card_example.json`` beside this
module, within ``_SCORE_TOLERANCE``), the tokenizer's ids against sentencepiece, and BOS and
EOS around every input; one line each (README.md says what each compares).
``linq_eval.model.check_record`` keeps the outcome per model and revision.

``card_example.json`` is the project's copy of the reference file of the same name, with a
``provenance`` field added; ``tests/test_check.py`` checks that every other field equals the
reference.

    from linq_eval.model.check import check_model
    report = check_model("linq-embed-mistral")
    print("\\n".join(str(line) for line in report.lines))
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sentencepiece

from linq_eval import paths
from linq_eval.errors import ConfigError
from linq_eval.model.encoder import DecoderEncoder
from linq_eval.model.loading import load_encoder
from linq_eval.model.random_models import mistral_tokenizer_file, random_encoder
from linq_eval.model.tokenization import tokenize
from linq_eval.profiles import DEFAULT_PROFILE, get_profile, profile_for_model

_SCORE_TOLERANCE = {"float32": 0.05, "float16": 0.5, "bfloat16": 0.5}
"""Largest allowed difference to the card's scores (x100), by the dtype the model runs in."""
_CARD_PROFILE = DEFAULT_PROFILE
"""The profile whose model card the example comes from (Linq-Embed-Mistral's)."""


@dataclass(frozen=True)
class CardExample:
    """The model card's usage example, as data."""

    task: str
    query_template: str
    queries: tuple[str, ...]
    passages: tuple[str, ...]
    max_length: int
    expected_scores: tuple[tuple[float, ...], ...]
    """Query x passage cosine similarities x100, as the card prints them."""

    @property
    def instructed_queries(self) -> list[str]:
        """The queries with the card's instruction template applied."""
        return [self.query_template.format(task=self.task, query=q) for q in self.queries]


def load_card_example(path: Path | None = None) -> CardExample:
    """Read ``card_example.json`` (the package's copy unless ``path`` is given)."""
    path = path or paths.card_example_file()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return CardExample(
            task=doc["task"],
            query_template=doc["query_template"],
            queries=tuple(doc["queries"]),
            passages=tuple(doc["passages"]),
            max_length=int(doc["max_length"]),
            expected_scores=tuple(tuple(float(v) for v in row) for row in doc["expected_scores"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"Cannot read the card example {path}: {exc}") from None


_SCORES = "card example scores"
"""The name of the check of the card example's scores."""


@dataclass(frozen=True)
class CheckLine:
    """The outcome of one check."""

    name: str
    passed: bool
    detail: str
    expected: str = ""
    """Why a failure is expected (random weights cannot give the card's scores): such a
    failure is shown as expected and does not fail the report."""

    def __str__(self) -> str:
        if not self.passed and self.expected:
            return f"FAIL (expected: {self.expected})  {self.name}: {self.detail}"
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.detail}"


@dataclass
class CheckReport:
    """Every check of one model."""

    model: str
    revision: str | None
    dtype: str
    device: str
    lines: list[CheckLine] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every check passed, or failed as expected."""
        return bool(self.lines) and all(line.passed or line.expected for line in self.lines)


def _matrix(values: Any) -> str:
    return "[" + ", ".join("[" + ", ".join(f"{v:.4f}" for v in row) + "]" for row in values) + "]"


def check_scores(encoder: DecoderEncoder, example: CardExample) -> CheckLine:
    """Encode the card's example and compare its scores with the card's."""
    if encoder.profile.max_length != example.max_length:
        raise ConfigError(
            f"The card example is encoded at max_length {example.max_length}; the encoder "
            f"has {encoder.profile.max_length}"
        )
    q = encoder.encode_texts(example.instructed_queries, where="card example query", progress=False)
    p = encoder.encode_texts(list(example.passages), where="card example passage", progress=False)
    got = (q @ p.T) * 100.0
    expected = np.asarray(example.expected_scores, dtype=np.float64)
    dtype = str(encoder.dtype).replace("torch.", "")
    tol = _SCORE_TOLERANCE.get(dtype, 0.5)
    worst = float(np.abs(got - expected).max())
    if worst <= tol:
        detail = f"{_matrix(got)}, within {tol:g} of the card's ({worst:.4f} at most, {dtype})"
    else:
        detail = (
            f"expected {_matrix(expected)}, got {_matrix(got)}: {worst:.4f} apart, more than "
            f"{tol:g} ({dtype}). Wrong weights, tokenizer, precision or pooling."
        )
    return CheckLine(_SCORES, worst <= tol, detail)


def tokenizer_texts(example: CardExample) -> dict[str, str]:
    """The fixed texts of the tokenizer checks, by name."""
    texts = {f"card query {i + 1}": q for i, q in enumerate(example.instructed_queries)}
    texts |= {f"card passage {i + 1}": p for i, p in enumerate(example.passages)}
    long = " ".join(example.passages)
    texts |= {
        "double spaces": "Two  spaces  between  words,   three   here.",
        "leading spaces": "   three leading spaces, then text",
        "leading space": " one leading space",
        "emoji": "Emoji 😀 👍🏽 👨‍👩‍👧 ❤️ in a sentence 🚀.",
        "CJK": "日本語の文章です。中文文本，还有标点。한국어 문장도 있습니다.",
        "5,000 characters": (long * (5000 // len(long) + 1))[:5000],
    }
    return texts


def sentencepiece_reference() -> Callable[[str], list[int]]:
    """Text ids as sentencepiece gives them with Mistral-7B's ``tokenizer.model``."""
    processor = sentencepiece.SentencePieceProcessor(model_file=str(mistral_tokenizer_file()))
    encode: Callable[[str], list[int]] = processor.encode
    return encode


def check_text_ids(
    tokenizer: Any, reference: Callable[[str], list[int]], texts: dict[str, str]
) -> CheckLine:
    """The tokenizer's ids of each text (no special tokens) against the reference's."""
    name = "tokenizer ids"
    total = 0
    for label, text in texts.items():
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        want = list(reference(text))
        total += len(want)
        if ids != want:
            i = next(
                (k for k, (a, b) in enumerate(zip(ids, want, strict=False)) if a != b),
                min(len(ids), len(want)),
            )
            return CheckLine(
                name,
                False,
                f"{label!r}: the tokenizer gives {ids[i : i + 6]} at token {i} where sentencepiece "
                f"gives {want[i : i + 6]} ({len(ids)} vs {len(want)} tokens)",
            )
    return CheckLine(
        name, True, f"{len(texts)} texts, {total:,} tokens: the same ids as sentencepiece"
    )


def _check_special_tokens(
    encoder: DecoderEncoder, texts: Sequence[str], max_lengths: Sequence[int]
) -> CheckLine:
    """Every input as the encoder tokenizes it: one BOS first, EOS last, at each max_length."""
    name = "BOS and EOS"
    bos = getattr(encoder.tokenizer, "bos_token_id", None)
    eos = getattr(encoder.tokenizer, "eos_token_id", None)
    truncated = 0
    for max_length in max_lengths:
        batch = tokenize(encoder.tokenizer, list(texts), encoder.special, max_length)
        truncated += batch.n_truncated
        for text, ids in zip(texts, batch.ids, strict=True):
            if ids[0] != bos or ids[1] == bos or ids[-1] != eos or len(ids) > max_length:
                return CheckLine(
                    name,
                    False,
                    f"{text[:40]!r} at max_length {max_length} is {ids[:3]} ... {ids[-3:]}; "
                    f"expected BOS ({bos}) once first and EOS ({eos}) last",
                )
    lengths = "/".join(str(n) for n in max_lengths)
    return CheckLine(
        name,
        True,
        f"{len(texts) * len(max_lengths)} inputs at max_length {lengths} ({truncated} truncated) "
        f"start with BOS ({bos}) and end with EOS ({eos})",
    )


def run_checks(
    encoder: DecoderEncoder, example: CardExample, *, run_max_length: int
) -> CheckReport:
    """All three checks on a loaded encoder (loaded at the example's max_length)."""
    settings = encoder.settings()
    texts = tokenizer_texts(example)
    lengths = sorted({example.max_length, run_max_length})
    lines = [
        check_scores(encoder, example),
        check_text_ids(encoder.tokenizer, sentencepiece_reference(), texts),
        _check_special_tokens(encoder, list(texts.values()), lengths),
    ]
    keep = ("model", "revision", "dtype", "device")
    return CheckReport(**{k: settings[k] for k in keep}, lines=lines)


def check_model(
    model: str = _CARD_PROFILE,
    *,
    revision: str | None = None,
    dtype: str | None = None,
    device: str | None = None,
    random_init: str | None = None,
) -> CheckReport:
    """Load a model as a run would (at the card example's max_length) and check it."""
    example = load_card_example()
    if random_init:
        profile = get_profile(_CARD_PROFILE)
        encoder = random_encoder(
            random_init, dtype=dtype, device=device, max_length=example.max_length, progress=False
        )
    else:
        profile = profile_for_model(model)
        if profile.name not in (_CARD_PROFILE, "custom"):
            raise ConfigError(
                f"linq-eval check encodes the model card example of {_CARD_PROFILE}; "
                f"{profile.name!r} has another card. Give --model {_CARD_PROFILE}, or a "
                "directory or hub id holding its weights."
            )
        encoder = load_encoder(
            model,
            revision=revision,
            dtype=dtype,
            device=device,
            max_length=example.max_length,
            progress=False,
        )
    report = run_checks(encoder, example, run_max_length=profile.max_length)
    if random_init:
        report.lines = [
            dataclasses.replace(line, expected=_RANDOM_WEIGHTS) if line.name == _SCORES else line
            for line in report.lines
        ]
    return report


_RANDOM_WEIGHTS = "random weights cannot give the card's scores; the other checks test the code"


__all__ = [
    "CardExample",
    "CheckLine",
    "CheckReport",
    "check_model",
    "check_scores",
    "check_text_ids",
    "load_card_example",
    "run_checks",
    "sentencepiece_reference",
    "tokenizer_texts",
]
