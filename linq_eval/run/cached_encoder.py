"""Encoding through the embedding cache: ``CachedEncoder`` wraps any ``DecoderEncoder``; why
its fixed-size chunks make a resumed or cached run score as an uninterrupted one is in
``linq_eval.run.cache``, how chunks are shared out under torchrun in
``linq_eval.run.distributed``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
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


def chunk_order(texts: Sequence[str], missing: np.ndarray) -> np.ndarray:
    """The missing positions, longest text first (ties: input order): the chunking order.

    Lengths are in characters, so every process agrees without tokenizing; the encoder sorts
    each chunk by tokens itself.
    """
    lengths = np.fromiter((len(texts[i]) for i in missing), dtype=np.int64, count=len(missing))
    return missing[np.lexsort((missing, -lengths))]


class CachedEncoder:
    """mteb's encoder protocol over a ``DecoderEncoder`` whose distinct texts are embedded
    through ``embed_unique`` (``encode_texts(..., embed=...)``), as mteb's
    ``CachedEmbeddingWrapper`` wraps a model: prompts, normalisation and input checks stay the
    inner encoder's. The rounding to the storage precision changes scores (slightly), so
    ``settings()`` records it as ``embedding_precision``."""

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
        """Raw embeddings of distinct full input texts, all rounded as stored: cached ones
        read, the others embedded in fixed-size chunks with the inner encoder's public
        ``tokenize`` and ``embed_ids`` (and stored).

        Under torchrun, chunk ``k`` of each round of ``world_size`` chunks is embedded by rank
        ``k`` and all-gathered; rank 0 decides what is cached and writes the new chunks.
        """
        group = distributed.current()
        main = group is None or group.is_main
        cache = self.cache if main else None
        dim = int(self.encoder.model.config.hidden_size)
        done = Embedded(np.empty((len(texts), dim), dtype=np.float32))
        keys = cache.keys(texts) if cache is not None else None
        found, cached = (
            cache.lookup(keys) if cache is not None else (np.zeros(len(texts), bool), None)
        )
        found = distributed.broadcast_object(found, group)
        n_cached = int(found.sum())
        done.counts = {"encoded_texts": 0, "cached_texts": n_cached}
        if n_cached:
            done.embeddings[found] = distributed.broadcast_array(cached, (n_cached, dim), group)
        order = chunk_order(texts, np.flatnonzero(~found))
        chunks = [order[i : i + self.chunk_texts] for i in range(0, len(order), self.chunk_texts)]
        world, rank = (group.world_size, group.rank) if group else (1, 0)
        bar = None
        if progress and main and len(chunks) > 1:
            bar = tqdm(total=len(order), desc=label, unit="text", dynamic_ncols=True, leave=False)
            if n_cached:
                bar.set_postfix_str(f"{n_cached:,} cached", refresh=False)
        started = time.perf_counter()
        for first in range(0, len(chunks), world):
            round_chunks = chunks[first : first + world]
            mine = round_chunks[rank] if rank < len(round_chunks) else order[:0]
            local, tokens, truncated = np.empty((0, dim), dtype=np.float32), 0, 0
            if len(mine):  # this rank's chunk, rounded as stored
                tokenized = self.encoder.tokenize([texts[i] for i in mine])
                show = progress and main and bar is None
                raw = self.encoder.embed_ids(tokenized.ids, progress=show, label=label)
                local, _ = round_to_storage(raw, embedding_precision(self.encoder.dtype))
                tokens, truncated = sum(map(len, tokenized.ids)), tokenized.n_truncated
            counts = [len(c) for c in round_chunks] + [0] * (world - len(round_chunks))
            gathered = distributed.all_gather_rows(local, counts, dim, group)
            for their_tokens, their_truncated in distributed.all_gather_object(
                (tokens, truncated), group
            ):
                done.tokens += their_tokens
                done.truncated += their_truncated
            for idx, vectors in zip(round_chunks, gathered, strict=False):
                done.embeddings[idx] = vectors
                if cache is not None:
                    cache.put(keys[idx], vectors)
            done.counts["encoded_texts"] += sum(len(c) for c in round_chunks)
            if bar is not None:
                bar.update(done.counts["encoded_texts"] - bar.n)
                rate = done.tokens / max(time.perf_counter() - started, 1e-9)
                cached_note = f", {n_cached:,} cached" if n_cached else ""
                bar.set_postfix_str(f"{rate:,.0f} tok/s{cached_note}")
        if bar is not None:
            bar.close()
        return done


__all__ = ["CachedEncoder", "chunk_order"]
