"""What decides an embedding and a score: one frozen record, and everything derived from it.

``ScoreSettings`` lists every setting that decides a raw embedding or a score. Its field
metadata says which is which:

- ``embedding``: the setting determines the raw (pooled, unnormalised) vector of an input, so
  the embedding cache's identity is made of these fields (``IDENTITY_KEYS``);
- ``score``: two results are comparable only when these fields are equal (``SCORE_KEYS``):
  the run record keeps them per task, the runner counts a task as done only when they equal
  the requested ones, ``compare`` refuses a run and reference that differ in one of them;
- ``task``: the field is each task's own (its prompts' hash, the identity of its data), so a
  whole run's settings (``RUN_SCORE_KEYS``) leave it out.

Nothing else lists these settings: the runner, the cache and ``compare`` derive their lists
from this type, and the encoder reports its settings as one (``DecoderEncoder.score_settings``):
every field is required, so a field renamed or left out on either side is a TypeError.

    from linq_eval.run_record import SCORE_KEYS
    settings = encoder.score_settings()
    settings.as_record()["max_length"]
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_BOTH = {"embedding": True, "score": True, "task": False}
_EMBEDDING = {"embedding": True, "score": False, "task": False}
_SCORE = {"embedding": False, "score": True, "task": False}
_TASK = {"embedding": False, "score": True, "task": True}


@dataclass(frozen=True)
class ScoreSettings:
    """Every setting that decides an embedding or a score (see the module docstring)."""

    model: str | None = field(metadata=_BOTH)
    """Model name as mteb files it (org/name)."""
    revision: str | None = field(metadata=_BOTH)
    """Model revision (hub commit, or seed-N for a random model)."""
    model_source: str | None = field(metadata=_BOTH)
    """Where the weights come from: hub id, local folder or pkg:<module>."""
    dtype: str | None = field(metadata=_BOTH)
    """Weights' dtype: bfloat16, float16 or float32."""
    max_length: int | None = field(metadata=_BOTH)
    """Tokens per input, special tokens included."""
    pooling: str | None = field(metadata=_BOTH)
    """last or mean."""
    eos: str | None = field(metadata=_BOTH)
    """append (every input ends with EOS) or none."""
    bos: str | None = field(metadata=_BOTH)
    """require (every input starts with BOS) or tokenizer."""
    special_tokens: Mapping[str, Any] | None = field(metadata=_BOTH)
    """The token ids put before and after every input (``{"prefix": [...], "suffix": [...]}``)."""
    padding_side: str | None = field(metadata=_BOTH)
    """left or right (pooling reads the mask, yet kernels may round differently)."""
    attn_implementation: str | None = field(metadata=_EMBEDDING)
    """sdpa, flash_attention_2, eager: changes the vectors' rounding, not what is computed, so
    it separates cached embeddings but does not make two scores incomparable."""
    policy: str | None = field(metadata=_SCORE)
    """Instruction policy: which inputs are instructed, which task types are normalised."""
    unnormalised_task_types: tuple[str, ...] | None = field(metadata=_SCORE)
    """Task types whose embeddings are not L2-normalised (from the policy); the others are."""
    template: str | None = field(metadata=_SCORE)
    """The template instructed inputs use ("" when the policy never instructs)."""
    instructions: str | None = field(metadata=_SCORE)
    instructions_version: str | None = field(metadata=_SCORE)
    prompt_hash: str | None = field(metadata=_TASK)
    """Hash of every prefix the inputs received (``linq_eval.prompts.builder.tasks_prompt_hash``):
    a task's own in its record entry, over every task in the folder's settings."""
    embedding_precision: str | None = field(metadata=_SCORE)
    """Precision embeddings are scored in: float32, or float16 for a half-precision model's
    embeddings through the cache (``linq_eval.run.cache.embedding_precision``)."""
    mteb_version: str | None = field(metadata=_SCORE)
    """mteb's version (it computes the metrics)."""
    data_hash: str | None = field(metadata=_TASK, default=None)
    """What identifies the data a task was scored on: the sha256 of the local files it read,
    or the hub dataset and its revision (``linq_eval.run.local_data.data_identity``); None
    for an encoder's settings, which hold no task."""

    def as_record(self) -> dict[str, Any]:
        """The fields as the run record stores them (JSON values: tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    def run_record(self) -> dict[str, Any]:
        """The fields a whole run shares (``RUN_SCORE_KEYS``: all but the per-task prompt
        hash), as the run record stores them."""
        record = self.as_record()
        return {key: record[key] for key in RUN_SCORE_KEYS}


def _keys(kind: str) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(ScoreSettings) if f.metadata[kind])


SCORE_KEYS = _keys("score")
"""Settings that decide a score: equal for two results to be compared."""
IDENTITY_KEYS = _keys("embedding")
"""Settings that determine a raw embedding: the embedding cache's identity."""
TASK_KEYS = _keys("task")
"""Score-deciding settings each task has its own value of (prompt hash, data identity)."""
RUN_SCORE_KEYS = tuple(key for key in SCORE_KEYS if key not in TASK_KEYS)
"""Score-deciding settings a whole run shares: all but each task's own (a folder's record
keeps the prompt hash over all its tasks)."""


HUB_SOURCE = "hf://datasets/"
"""How a task's ``data_source`` names hub data (``hf://datasets/<path>@<revision>``)."""


def is_hub_source(source: object) -> bool:
    """Whether a recorded ``data_source`` is the hub dataset (``hub`` in older records)."""
    return source in (None, "hub") or str(source).startswith(HUB_SOURCE)


def settings_hash(settings: Mapping[str, Any]) -> str:
    """16 hex digits of sha256 over a task's score-deciding settings (``SCORE_KEYS``): what
    its per-query evidence records, to be matched with the run record's entry."""
    blob = json.dumps(score_part(settings), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def embedding_identity(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The part of encoder settings that determines raw embeddings (``IDENTITY_KEYS``)."""
    return {key: settings.get(key) for key in IDENTITY_KEYS}


def score_part(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The score-deciding part of a settings mapping (``SCORE_KEYS``; absent keys: None)."""
    return {key: settings.get(key) for key in SCORE_KEYS}


def differing_keys(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    *,
    keys: tuple[str, ...] = SCORE_KEYS,
    compare_missing: bool = False,
) -> list[str]:
    """The keys (of ``keys``) whose values differ between ``a`` and ``b``.

    A key that one side does not record (an older record) counts as differing only with
    ``compare_missing``; see ``missing_keys`` to report it.
    """
    return [
        key
        for key in keys
        if (compare_missing or (key in a and key in b)) and a.get(key) != b.get(key)
    ]


def missing_keys(
    a: Mapping[str, Any], b: Mapping[str, Any], keys: tuple[str, ...] = SCORE_KEYS
) -> list[str]:
    """The keys (of ``keys``) that exactly one of ``a`` and ``b`` records."""
    return [key for key in keys if (key in a) != (key in b)]


def task_settings(
    record: Mapping[str, Any] | None, task: str
) -> tuple[dict[str, Any] | None, bool]:
    """The settings a task's result was made with, and whether they are the task's own.

    A task entry carries its own ``settings`` (with its own ``prompt_hash``); records written
    before that have only the folder's ``settings`` (whose prompt hash covers every task of
    the folder): then those, and False. ``(None, False)`` without a record.
    """
    if not record:
        return None, False
    entry = (record.get("tasks") or {}).get(task)
    if isinstance(entry, Mapping) and isinstance(entry.get("settings"), Mapping):
        return dict(entry["settings"]), True
    folder = record.get("settings")
    return (dict(folder), False) if isinstance(folder, Mapping) else (None, False)


__all__ = [
    "IDENTITY_KEYS",
    "RUN_SCORE_KEYS",
    "SCORE_KEYS",
    "TASK_KEYS",
    "ScoreSettings",
    "HUB_SOURCE",
    "differing_keys",
    "embedding_identity",
    "is_hub_source",
    "missing_keys",
    "score_part",
    "settings_hash",
    "task_settings",
]
