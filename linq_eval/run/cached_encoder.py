"""Encoding through the embedding cache: ``CachedEncoder`` wraps any ``DecoderEncoder``.

The distinct input texts of a call are looked up in the cache (``linq_eval.run.cache``); the
missing ones are cut into chunks of a fixed number of texts (longest first), each chunk
embedded with the inner encoder's public ``tokenize`` and ``embed_ids``, rounded to the
storage precision (``cache.embedding_precision``: float32 for a float32 model, float16 for a
half-precision one) exactly as stored, and stored. So the chunks computed after a restart are the
ones an uninterrupted run would have computed, and a resumed or cached run gives the same scores as
an uninterrupted one. Under torchrun the chunks of each round are shared out across the
processes (``linq_eval.run.distributed``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from linq_eval.errors import ConfigError
from linq_eval.model.encoder import DecoderEncoder, Embedded
from linq_eval.run import distributed
from linq_eval.run.cache import (
    DEFAULT_CHUNK_TEXTS,
    EmbeddingCache,
    embedding_precision,
    round_to_storage,
)
from linq_eval.run_record import ScoreSettings


@dataclass
class _ChunkedResult:
    """Embeddings of a list of unique texts, and how they were obtained."""

    embeddings: np.ndarray
    """float32 [n, dim], raw (not normalised), rounded as stored."""
    encoded_texts: int = 0
    """Texts run through the model (by all processes)."""
    cached_texts: int = 0
    """Texts found in the cache."""
    tokens: int = 0
    """Tokens of the encoded texts, special tokens included."""
    truncated: int = 0
    """Encoded texts cut at max_length."""
    chunks: list[int] = field(default_factory=list)
    """Sizes of the chunks encoded."""


def chunk_order(texts: Sequence[str], missing: np.ndarray) -> np.ndarray:
    """The missing positions, longest text first (ties: input order): the chunking order.

    Lengths are in characters, so every process agrees without tokenizing; the encoder sorts
    each chunk by tokens itself.
    """
    lengths = np.fromiter((len(texts[i]) for i in missing), dtype=np.int64, count=len(missing))
    return missing[np.lexsort((missing, -lengths))]


def _encode_unique(
    encoder: DecoderEncoder,
    texts: Sequence[str],
    *,
    cache: EmbeddingCache | None,
    chunk_texts: int = DEFAULT_CHUNK_TEXTS,
    progress: bool,
    label: str,
) -> _ChunkedResult:
    """Embed unique full input texts in fixed-size chunks, through ``cache`` when there is one,
    with the encoder's public ``tokenize`` and ``embed_ids``.

    Under torchrun, chunk ``k`` of each round of ``world_size`` chunks is embedded by rank
    ``k`` and all-gathered; rank 0 decides what is cached and writes the new chunks.
    """
    group = distributed.current()
    main = group is None or group.is_main
    cache = cache if main else None
    dim = int(encoder.model.config.hidden_size)
    result = _ChunkedResult(np.empty((len(texts), dim), dtype=np.float32))
    keys = cache.keys(texts) if cache is not None else None
    found, cached = cache.lookup(keys) if cache is not None else (np.zeros(len(texts), bool), None)
    found = distributed.broadcast_object(found, group)
    result.cached_texts = int(found.sum())
    if result.cached_texts:
        result.embeddings[found] = distributed.broadcast_array(
            cached, (result.cached_texts, dim), group
        )
    order = chunk_order(texts, np.flatnonzero(~found))
    chunks = [order[i : i + chunk_texts] for i in range(0, len(order), chunk_texts)]
    world, rank = (group.world_size, group.rank) if group else (1, 0)
    bar = (
        _chunk_bar(len(order), result.cached_texts, label)
        if progress and main and len(chunks) > 1
        else None
    )
    started = time.perf_counter()
    for first in range(0, len(chunks), world):
        round_chunks = chunks[first : first + world]
        mine = round_chunks[rank] if rank < len(round_chunks) else order[:0]
        local, tokens, truncated = _embed_chunk(
            encoder,
            [texts[i] for i in mine],
            dim,
            progress=progress and main and bar is None,
            label=label,
        )
        counts = [len(c) for c in round_chunks] + [0] * (world - len(round_chunks))
        gathered = distributed.all_gather_rows(local, counts, dim, group)
        for stats in distributed.all_gather_object((tokens, truncated), group):
            result.tokens += stats[0]
            result.truncated += stats[1]
        for idx, vectors in zip(round_chunks, gathered, strict=False):
            result.embeddings[idx] = vectors
            result.chunks.append(len(idx))
            if cache is not None:
                cache.put(keys[idx], vectors)
        result.encoded_texts += sum(len(c) for c in round_chunks)
        _update_bar(bar, result, started)
    if bar is not None:
        bar.close()
    return result


def _embed_chunk(
    encoder: DecoderEncoder, texts: list[str], dim: int, *, progress: bool, label: str
) -> tuple[np.ndarray, int, int]:
    """``(vectors rounded as stored, tokens, truncated)`` of one chunk's texts."""
    if not texts:
        return np.empty((0, dim), dtype=np.float32), 0, 0
    tokenized = encoder.tokenize(texts)
    raw = encoder.embed_ids(tokenized.ids, progress=progress, label=label)
    local, _ = round_to_storage(raw, embedding_precision(encoder.dtype))
    return local, sum(len(ids) for ids in tokenized.ids), tokenized.n_truncated


def _chunk_bar(total: int, cached: int, label: str) -> Any:
    bar = tqdm(total=total, desc=f"{label}", unit="text", dynamic_ncols=True, leave=False)
    if cached:
        bar.set_postfix_str(f"{cached:,} cached", refresh=False)
    return bar


def _update_bar(bar: Any, result: _ChunkedResult, started: float) -> None:
    if bar is None:
        return
    bar.update(result.encoded_texts - bar.n)
    rate = result.tokens / max(time.perf_counter() - started, 1e-9)
    cached = f", {result.cached_texts:,} cached" if result.cached_texts else ""
    bar.set_postfix_str(f"{rate:,.0f} tok/s{cached}", refresh=True)


class CachedEncoder:
    """An encoder whose embeddings are computed in fixed-size chunks, rounded to the storage
    precision (``embedding_precision`` of the model's dtype) as stored, and kept in an on-disk
    ``EmbeddingCache`` when one is given (as mteb's ``CachedEmbeddingWrapper`` wraps a model).

    It implements mteb's encoder protocol over the inner encoder's public methods: prompts,
    normalisation and input checks stay the inner encoder's, which embeds the distinct
    texts through this wrapper's ``embed_unique`` (``encode_texts(..., embed=...)``). The
    rounding changes scores (slightly), so ``settings()`` records it as
    ``embedding_precision``.
    """

    def __init__(
        self,
        encoder: DecoderEncoder,
        cache: EmbeddingCache | None = None,
        *,
        chunk_texts: int = DEFAULT_CHUNK_TEXTS,
    ) -> None:
        if chunk_texts < 1:
            raise ConfigError(f"chunk_texts={chunk_texts}: must be at least 1")
        self.encoder = encoder
        self.cache = cache
        self.chunk_texts = chunk_texts

    # ------------------------------------------------------------------ mteb protocol
    @property
    def mteb_model_meta(self) -> Any:
        return self.encoder.mteb_model_meta

    def encode(self, inputs: Any, **kwargs: Any) -> np.ndarray:
        """mteb's ``encode`` (task_metadata, hf_split, hf_subset, prompt_type ...)."""
        return self.encoder.encode(inputs, embed=self.embed_unique, **kwargs)

    def similarity(self, embeddings1: Any, embeddings2: Any) -> Any:
        return self.encoder.similarity(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Any:
        return self.encoder.similarity_pairwise(embeddings1, embeddings2)

    # ------------------------------------------------------------------ the inner encoder's
    def encode_texts(self, texts: Sequence[Any], **options: Any) -> np.ndarray:
        """The inner encoder's ``encode_texts``, embedded through this wrapper."""
        return self.encoder.encode_texts(texts, embed=self.embed_unique, **options)

    def score_settings(self, prompt_hash: str | None = None) -> ScoreSettings:
        """The inner encoder's, with the precision of the embeddings as stored."""
        inner = self.encoder.score_settings(prompt_hash)
        return dataclasses.replace(inner, embedding_precision=embedding_precision(inner.dtype))

    def settings(self) -> dict[str, Any]:
        """The inner encoder's run record settings, with this wrapper's score settings."""
        return {**self.score_settings().run_record(), **self.encoder.run_details()}

    def prompt_hash(self, task_names: Sequence[str]) -> str:
        return self.encoder.prompt_hash(task_names)

    @property
    def device(self) -> Any:
        return self.encoder.device

    @property
    def stats(self) -> Any:
        return self.encoder.stats

    def embed_unique(self, texts: Sequence[str], *, progress: bool, label: str) -> Embedded:
        """Raw embeddings of distinct full input texts: cached ones read, the others
        encoded chunk by chunk (and stored), all rounded as stored."""
        done = _encode_unique(
            self.encoder,
            texts,
            cache=self.cache,
            chunk_texts=self.chunk_texts,
            progress=progress,
            label=label,
        )
        counts = {"encoded_texts": done.encoded_texts, "cached_texts": done.cached_texts}
        return Embedded(done.embeddings, done.tokens, done.truncated, counts)


__all__ = ["CachedEncoder", "chunk_order"]
