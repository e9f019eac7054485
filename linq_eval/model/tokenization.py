"""Tokenization with guaranteed special tokens, and an offline Mistral tokenizer.

Every input of a last-token-pooled model must end with EOS: the embedding *is* the hidden
state of that token. Under transformers 5 the Mistral tokenizer no longer appends ``</s>``
itself, and last-token pooling then silently pools the last word of each text (mteb PR 5237:
nDCG@10 0.374 -> 0.065). We therefore never rely on the tokenizer's own special-token
handling for decoders: we tokenize the bare text and add BOS and EOS ourselves, after
truncating to ``max_length`` minus the special tokens.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, normalizers, processors
from transformers import PreTrainedTokenizerFast

from linq_eval.errors import ConfigError
from linq_eval.thirdparty.transformers_private import sentencepiece_bpe


@dataclass(frozen=True)
class SpecialTokens:
    """The token ids put around every input."""

    prefix: tuple[int, ...]
    """Ids before the text (BOS for decoders, [CLS] for BERT-style encoders)."""
    suffix: tuple[int, ...]
    """Ids after the text (EOS for decoders, [SEP] for BERT-style encoders)."""


def special_tokens_for(tokenizer: Any, eos: str, bos: str = "require") -> SpecialTokens:
    """The prefix and suffix ids to wrap each input in.

    ``eos == "append"`` (decoders): always EOS, and BOS when ``bos == "require"``; a
    tokenizer without an EOS token is an error, never a silent fallback. ``eos == "none"``:
    whatever the tokenizer itself adds (e.g. [CLS] ... [SEP] for BERT).
    """
    probe_plain = list(tokenizer("x", add_special_tokens=False)["input_ids"])
    probe_full = list(tokenizer("x", add_special_tokens=True)["input_ids"])
    n = len(probe_plain)
    found = (i for i in range(len(probe_full) - n + 1) if probe_full[i : i + n] == probe_plain)
    start = next(found, -1)
    if start < 0:
        raise ConfigError(f"cannot locate the text within the tokenizer's own output {probe_full}")
    own_prefix = tuple(probe_full[:start])
    own_suffix = tuple(probe_full[start + n :])
    if eos == "none":
        return SpecialTokens(own_prefix, own_suffix)
    if eos != "append":
        raise ConfigError(f"Unknown EOS handling {eos!r}; valid: 'append', 'none'")
    eos_id = getattr(tokenizer, "eos_token_id", None)
    if eos_id is None:
        raise ConfigError(
            f"The tokenizer {type(tokenizer).__name__} has no EOS token, but this model pools "
            "the last token, which must be EOS. Set tokenizer.eos_token, or use a profile with "
            "eos='none' and mean pooling."
        )
    prefix = own_prefix
    if bos == "require":
        bos_id = getattr(tokenizer, "bos_token_id", None)
        if bos_id is None:
            raise ConfigError(
                f"The tokenizer {type(tokenizer).__name__} has no BOS token, but this profile "
                "requires every input to start with BOS"
            )
        if bos_id not in own_prefix:
            prefix = (bos_id, *own_prefix)
    return SpecialTokens(prefix=prefix, suffix=(eos_id,))


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class TokenizedBatch:
    """Token ids of many texts, unpadded, with truncation counted."""

    ids: list[list[int]]
    n_truncated: int


def needs_repair(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate (which no tokenizer can encode: ``tokenize``
    replaces it with U+FFFD)."""
    return _LONE_SURROGATE.search(text) is not None


def tokenize(
    tokenizer: Any, texts: Sequence[str], special: SpecialTokens, max_length: int
) -> TokenizedBatch:
    """Tokenize ``texts`` and wrap each in ``special``; keep at most ``max_length`` ids.

    Truncation cuts the text, never the special tokens: BOS stays first and EOS last.
    """
    budget = max_length - len(special.prefix) - len(special.suffix)
    if budget < 1:
        raise ConfigError(
            f"max_length={max_length} leaves no room for text next to the "
            f"{len(special.prefix) + len(special.suffix)} special tokens"
        )
    texts = [_LONE_SURROGATE.sub("\ufffd", text) for text in texts]
    if not texts:  # the tokenizer itself fails on an empty list
        return TokenizedBatch([], 0)
    encoded = tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)
    rows, pre, suf = encoded["input_ids"], list(special.prefix), list(special.suffix)
    ids = [pre + list(row[:budget]) + suf for row in rows]
    return TokenizedBatch(ids, sum(len(row) > budget for row in rows))


def mistral_tokenizer_from_sentencepiece(model_file: str | Path) -> Any:
    """A fast tokenizer equivalent to Mistral-7B-v0.1's, built offline from ``tokenizer.model``.

    ``LlamaTokenizer(vocab_file=...)`` under transformers 5 silently encodes text wrong, so we
    build the byte-fallback BPE from the sentencepiece model with merges ordered by piece score
    (as sentencepiece itself does) and the legacy "prepend ▁, spaces to ▁" normaliser.
    """
    vocab, merges, special = sentencepiece_bpe(str(model_file))
    bpe = models.BPE(vocab, merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True)
    tok = Tokenizer(bpe)
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    tok.add_special_tokens(special)
    # Like Mistral's own tokenizer under transformers 5: BOS is added, EOS is not.
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


__all__ = [
    "SpecialTokens",
    "TokenizedBatch",
    "mistral_tokenizer_from_sentencepiece",
    "needs_repair",
    "special_tokens_for",
    "tokenize",
]
