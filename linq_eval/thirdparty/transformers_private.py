"""transformers' private names that linq-eval uses, each behind one function.

- ``PreTrainedModel._supports_attention_backend``: the class attribute marking models that
  route attention through ``AttentionInterface`` (no public equivalent); without it a model
  is treated as not routing so, and packed attention falls back to padded batches;
- ``PretrainedConfig._attn_implementation``: the attention implementation a loaded model runs
  (read, and switched for the duration of a packed forward pass: the public
  ``set_attn_implementation`` also validates and registers mask functions, which a packed row
  must not get). Without it, packing is unavailable (padded batches);
- ``transformers.convert_slow_tokenizer.SentencePieceExtractor`` and ``generate_merges``: a
  sentencepiece model's vocabulary, special tokens and merges ordered by piece score, for the
  offline Mistral tokenizer (``sentencepiece_bpe``; no fallback).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from tokenizers import models

from linq_eval.thirdparty import gone, lookup, require

_SUPPORTS_BACKEND = "_supports_attention_backend"
_ATTN_IMPLEMENTATION = "_attn_implementation"
_CONVERTER = "transformers.convert_slow_tokenizer"
_CONVERTER_NAMES = ("SentencePieceExtractor", "generate_merges")
_PRIVATE_NAMES = (
    f"PreTrainedModel.{_SUPPORTS_BACKEND}",
    f"PretrainedConfig.{_ATTN_IMPLEMENTATION}",
    *(f"{_CONVERTER}.{name}" for name in _CONVERTER_NAMES),
)
"""Every private name used here."""


def missing_names() -> list[str]:
    """The private names the installed transformers lacks, with its version."""
    from transformers import PretrainedConfig, PreTrainedModel

    config = PretrainedConfig()
    found = (
        hasattr(PreTrainedModel, _SUPPORTS_BACKEND),
        hasattr(config, _ATTN_IMPLEMENTATION),
        *(lookup(_CONVERTER, name) is not None for name in _CONVERTER_NAMES),
    )
    return gone("transformers", [n for n, ok in zip(_PRIVATE_NAMES, found, strict=True) if not ok])


def sentencepiece_bpe(model_file: str) -> tuple[dict[str, int], list[Any], list[Any]]:
    """``(vocab, merges, special_tokens)`` of a sentencepiece BPE model file: merges ordered
    by piece score (as sentencepiece itself merges), special tokens as ``AddedToken``s."""
    extractor_class, generate_merges = (
        require("transformers", _CONVERTER, name) for name in _CONVERTER_NAMES
    )
    extractor = extractor_class(model_file)
    extracted = extractor.extract(models.BPE)
    vocab = extracted["vocab"]
    scores = {piece.piece: piece.score for piece in extractor.proto.pieces}
    return vocab, generate_merges(vocab, scores), extracted["additional_special_tokens"]


def supports_attention_backend(model: Any) -> bool:
    """Whether the model routes attention through transformers' ``AttentionInterface``."""
    return bool(getattr(model, _SUPPORTS_BACKEND, False))


def attn_implementation(config: Any) -> str | None:
    """The attention implementation a model with this config runs (None when unknown)."""
    value = getattr(config, _ATTN_IMPLEMENTATION, None)
    return value if isinstance(value, str) else None


def can_switch_attention(config: Any) -> bool:
    """Whether ``attention_switched`` can switch this config's implementation."""
    return hasattr(config, _ATTN_IMPLEMENTATION)


@contextlib.contextmanager
def attention_switched(config: Any, name: str) -> Iterator[None]:
    """Run the model of ``config`` under attention implementation ``name`` within the block."""
    previous = getattr(config, _ATTN_IMPLEMENTATION)
    setattr(config, _ATTN_IMPLEMENTATION, name)
    try:
        yield
    finally:
        setattr(config, _ATTN_IMPLEMENTATION, previous)


__all__ = [
    "attention_switched",
    "attn_implementation",
    "can_switch_attention",
    "missing_names",
    "sentencepiece_bpe",
    "supports_attention_backend",
]
