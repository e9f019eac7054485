"""How much encoding one task is: its texts and tokens per input side, with no model loaded.

The sizes come from the descriptive statistics mteb ships per task (number of texts, unique
texts and characters per input side). Tokens are estimated from characters
(``CHARS_PER_TOKEN``), with the instruction prefix added and truncation at max_length.

    from linq_eval.run.estimate import estimate_task
    estimate_task(mteb_task("SciFact"), max_length=512).tokens    # distinct inputs' tokens
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mteb import AbsTask, TaskMetadata

CHARS_PER_TOKEN = 4.0
"""English characters per token: 3.9 for Mistral's tokenizer on SciFact, 4.5 for BERT's."""

_QUERY_SIDES = ("queries", "text1", "text", "sentence1")
"""Descriptive-statistics sides encoded with the query prompt type; the others are documents."""

SideSize = tuple[bool, int, float, float]
"""One input side: (document side?, distinct texts, mean and longest tokens per text)."""


@dataclass(frozen=True)
class TaskEstimate:
    """Size of one task's encoding work, from mteb's descriptive statistics."""

    name: str
    """mteb task name."""
    type: str
    """mteb task type."""
    texts: int = 0
    """Inputs passed to the encoder, duplicates included."""
    unique_texts: int = 0
    """Distinct inputs per side: what is actually encoded."""
    tokens: int = 0
    """Estimated tokens of the distinct inputs (prefix and special tokens included)."""
    document_tokens: int = 0
    """The part of ``tokens`` spent on the document side (the corpus, for retrieval)."""
    known: bool = True
    """False when mteb ships no statistics for the task (its size counts as 0)."""
    side_tokens: Mapping[str, int] = field(default_factory=dict, compare=False)
    """``tokens`` by input side (``queries``, ``documents``, ``text``, ``text1`` ...)."""
    sides: tuple[SideSize, ...] = ()
    """Per input side: (document side?, distinct texts, mean and longest tokens per text)."""

    def tail_tokens(self, max_length: int, *, documents: bool = True) -> float:
        """Expected tokens with inputs truncated at ``max_length``, the lengths of each side
        taken as exponential around their mean, capped at their longest (``documents=False``:
        the query side only). Only differences of this are used: the lengths are a model."""
        return sum(
            n * mean * (1.0 - math.exp(-min(max_length, longest) / mean))
            for is_doc, n, mean, longest in self.sides
            if (documents or not is_doc) and mean > 0
        )


def side_kind(side: str) -> str:
    """``query`` or ``document``: which prompt an input side of the statistics receives."""
    return "query" if side in _QUERY_SIDES else "document"


def side_stats(split_stats: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The text statistics of each input side of one split (or subset), keyed by side."""
    return {
        key.removesuffix("_text_statistics").removesuffix("_statistics"): value
        for key, value in split_stats.items()
        if key.endswith("_statistics")
        and isinstance(value, Mapping)
        and "total_text_length" in value
        and "unique_texts" in value
    }


def _split_parts(task: AbsTask, split_stats: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The statistics of the subsets the task evaluates (a benchmark may keep only some)."""
    per_subset = split_stats.get("hf_subset_descriptive_stats")
    if isinstance(per_subset, Mapping) and per_subset:
        chosen = [per_subset[s] for s in task.hf_subsets if s in per_subset]
        if chosen:
            return chosen
    return [split_stats]


@dataclass
class _Tally:
    """The running sums of one task's estimate, added side by side."""

    max_length: int
    prefix: Mapping[str, str]
    """The instruction prefix of each prompt type (``query``, ``document``)."""
    chars_per_token: float
    special_tokens: int
    texts: int = 0
    unique: int = 0
    tokens: int = 0
    doc_tokens: int = 0
    side_tokens: dict[str, int] = field(default_factory=dict)
    sizes: list[SideSize] = field(default_factory=list)

    def add(
        self, side: str, n_texts: int, n_unique: int, avg_chars: float, max_chars: float = 0.0
    ) -> None:
        """One input side: ``n_texts`` inputs, ``n_unique`` distinct, of these lengths."""
        kind = side_kind(side)
        extra = len(self.prefix.get(kind, "")) / self.chars_per_token + self.special_tokens
        chars = avg_chars + len(self.prefix.get(kind, ""))
        per_text = min(
            self.max_length, math.ceil(chars / self.chars_per_token) + self.special_tokens
        )
        longest = max(max_chars, avg_chars) / self.chars_per_token + extra
        mean = avg_chars / self.chars_per_token + extra
        self.sizes.append((kind == "document", n_unique, mean, longest))
        self.texts += n_texts
        self.unique += n_unique
        self.tokens += n_unique * per_text
        self.side_tokens[side] = self.side_tokens.get(side, 0) + n_unique * per_text
        if kind == "document":
            self.doc_tokens += n_unique * per_text

    def add_part(self, task: AbsTask, part: Mapping[str, Any]) -> None:
        """Every side of one subset of one split, and a classification task's training texts."""
        sides = side_stats(part)
        for side, s in sides.items():
            avg = float(s.get("average_text_length") or 0.0)
            n = round(s["total_text_length"] / avg) if avg else 0
            self.add(side, n, int(s["unique_texts"]), avg, float(s.get("max_text_length") or 0))
        labels = (part.get("label_statistics") or {}).get("unique_labels")
        if task.metadata.type == "Classification" and labels and "text" in sides:
            # Few-shot training texts: samples_per_label x labels, in each experiment.
            n_train = (
                int(getattr(task, "samples_per_label", 8))
                * int(labels)
                * int(getattr(task, "n_experiments", 10))
            )
            self.add("text", n_train, n_train, float(sides["text"].get("average_text_length", 0)))

    def estimate(self, meta: TaskMetadata) -> TaskEstimate:
        return TaskEstimate(
            meta.name,
            meta.type,
            self.texts,
            self.unique,
            self.tokens,
            self.doc_tokens,
            side_tokens=self.side_tokens,
            sides=tuple(self.sizes),
        )


def _sum_estimates(meta: TaskMetadata, parts: list[TaskEstimate]) -> TaskEstimate:
    """An aggregate task's estimate: the sum of its subtasks'."""
    sides: dict[str, int] = {}
    for part in parts:
        for side, n in part.side_tokens.items():
            sides[side] = sides.get(side, 0) + n
    return TaskEstimate(
        meta.name,
        meta.type,
        texts=sum(p.texts for p in parts),
        unique_texts=sum(p.unique_texts for p in parts),
        tokens=sum(p.tokens for p in parts),
        document_tokens=sum(p.document_tokens for p in parts),
        known=all(p.known for p in parts),
        side_tokens=sides,
        sides=tuple(side for p in parts for side in p.sides),
    )


def estimate_task(
    task: AbsTask,
    *,
    max_length: int,
    prompts: Mapping[str, Mapping[str, str]] | None = None,
    chars_per_token: float = CHARS_PER_TOKEN,
    special_tokens: int = 2,
) -> TaskEstimate:
    """Estimate a task's texts and tokens; aggregate tasks sum their subtasks.

    ``prompts``: ``{task: {"query": prefix, "document": prefix}}`` (``task_prompts``), whose
    lengths are added to each input of that side.
    """
    meta = task.metadata
    if task.is_aggregate:
        parts = [
            estimate_task(
                sub,
                max_length=max_length,
                prompts=prompts,
                chars_per_token=chars_per_token,
                special_tokens=special_tokens,
            )
            for sub in meta.tasks
        ]
        return _sum_estimates(meta, parts)
    stats = meta.descriptive_stats
    if not stats or any(split not in stats for split in task.eval_splits):
        return TaskEstimate(meta.name, meta.type, known=False)
    prefix = (prompts or {}).get(meta.name, {})
    tally = _Tally(max_length, prefix, chars_per_token, special_tokens)
    for split in task.eval_splits:
        for part in _split_parts(task, stats[split]):
            tally.add_part(task, part)
    return tally.estimate(meta)


__all__ = [
    "CHARS_PER_TOKEN",
    "SideSize",
    "TaskEstimate",
    "estimate_task",
    "side_kind",
    "side_stats",
]
