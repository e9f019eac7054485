"""How much encoding one task is: its texts and tokens per input side, with no model loaded,
from mteb's descriptive statistics (tokens from characters, prefix added, cut at max_length).

    from linq_eval.run.estimate import estimate_task
    estimate_task(registry().task("SciFact"), max_length=512).tokens   # distinct inputs' tokens
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from linq_eval.registry import TaskInfo, descriptive_stats, registry

CHARS_PER_TOKEN = 4.0
"""English characters per token: 3.9 for Mistral's tokenizer on SciFact, 4.5 for BERT's."""

_QUERY_SIDES = ("queries", "text1", "text", "sentence1")
"""Descriptive-statistics sides encoded with the query prompt type; the others are documents."""

_SPECIAL_TOKENS = 2
"""BOS and EOS, added to every input."""

SideSize = tuple[bool, int, float, float]
"""One input side: (document side?, distinct texts, mean and longest tokens per text)."""


@dataclass(frozen=True)
class TaskEstimate:
    """Size of one task's encoding work, from mteb's descriptive statistics."""

    name: str
    type: str
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


def _split_parts(task: TaskInfo, split_stats: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The statistics of the subsets the task evaluates (a benchmark may keep only some)."""
    per_subset = split_stats.get("hf_subset_descriptive_stats")
    if isinstance(per_subset, Mapping) and per_subset:
        chosen = [per_subset[s] for s in task.hf_subsets if s in per_subset]
        if chosen:
            return chosen
    return [split_stats]


def _sum_estimates(task: TaskInfo, parts: list[TaskEstimate]) -> TaskEstimate:
    """The sum of estimates: of a task's input sides, or of an aggregate task's subtasks."""
    sides: dict[str, int] = {}
    for part in parts:
        for side, n in part.side_tokens.items():
            sides[side] = sides.get(side, 0) + n
    return TaskEstimate(
        task.name,
        task.type,
        texts=sum(p.texts for p in parts),
        unique_texts=sum(p.unique_texts for p in parts),
        tokens=sum(p.tokens for p in parts),
        document_tokens=sum(p.document_tokens for p in parts),
        known=all(p.known for p in parts),
        side_tokens=sides,
        sides=tuple(side for p in parts for side in p.sides),
    )


def estimate_task(
    task: TaskInfo, *, max_length: int, prompts: Mapping[str, Mapping[str, str]] | None = None
) -> TaskEstimate:
    """Estimate a task's texts and tokens (an aggregate's: its subtasks'); ``prompts``
    (``task_prompts``) gives each task's prefix per prompt type, added to each input."""
    if task.is_aggregate:
        reg = registry()
        parts = [
            estimate_task(reg.task(sub), max_length=max_length, prompts=prompts)
            for sub in task.subtasks
        ]
        return _sum_estimates(task, parts)
    stats = descriptive_stats(task)
    if not stats or any(split not in stats for split in task.eval_splits):
        return TaskEstimate(task.name, task.type, known=False)
    prefix = (prompts or {}).get(task.name, {})

    def side(
        name: str, n_texts: int, n_unique: int, avg_chars: float, max_chars: float = 0.0
    ) -> TaskEstimate:
        """One input side: ``n_texts`` inputs, ``n_unique`` distinct, of these lengths."""
        kind = side_kind(name)
        extra = len(prefix.get(kind, "")) / CHARS_PER_TOKEN + _SPECIAL_TOKENS
        chars = avg_chars + len(prefix.get(kind, ""))
        per_text = min(max_length, math.ceil(chars / CHARS_PER_TOKEN) + _SPECIAL_TOKENS)
        longest = max(max_chars, avg_chars) / CHARS_PER_TOKEN + extra
        size = (kind == "document", n_unique, avg_chars / CHARS_PER_TOKEN + extra, longest)
        tokens = n_unique * per_text
        return TaskEstimate(
            task.name,
            task.type,
            n_texts,
            n_unique,
            tokens,
            tokens if kind == "document" else 0,
            side_tokens={name: tokens},
            sides=(size,),
        )

    sides = []
    for split in task.eval_splits:
        for part in _split_parts(task, stats[split]):
            texts = side_stats(part)
            for name, s in texts.items():
                avg = float(s.get("average_text_length") or 0.0)
                n = round(s["total_text_length"] / avg) if avg else 0
                longest = float(s.get("max_text_length") or 0)
                sides.append(side(name, n, int(s["unique_texts"]), avg, longest))
            labels = (part.get("label_statistics") or {}).get("unique_labels")
            if task.type == "Classification" and task.few_shot and labels and "text" in texts:
                # Few-shot training texts: samples_per_label x labels, in each experiment.
                samples_per_label, experiments = task.few_shot
                n_train = samples_per_label * int(labels) * experiments
                avg = float(texts["text"].get("average_text_length", 0))
                sides.append(side("text", n_train, n_train, avg))
    return _sum_estimates(task, sides)


__all__ = [
    "CHARS_PER_TOKEN",
    "SideSize",
    "TaskEstimate",
    "estimate_task",
    "side_kind",
    "side_stats",
]
