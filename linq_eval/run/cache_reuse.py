"""How much of a run the embedding cache of earlier runs already holds: an estimate.

The cache keys every vector by its input (instruction prefix and text) under one encoder
identity, whatever task it came from, so a task whose texts another task of the folder already
encoded costs only what is new (MTEB(eng, v2) after MTEB(eng, v1) in one ``--output``). A plan
loads no texts: a side of a task (queries, corpus, sentences ...) counts as cached when a task
with a result file in the folder reads the ``same dataset`` (path and revision), or is its
parent (mteb's ``adapted_from``) and the task a ``hard-negative subset`` of it (the parent's
queries, the top documents of its corpus) or that side has the ``same statistics`` (unique
texts, average length), and the side gets the same instruction prefix in both. Everything else
counts as new, so the estimate errs towards encoding (BiorxivClusteringP2P.v2 may share more);
it assumes the cache folder still holds what the earlier runs encoded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from linq_eval.errors import LinqEvalError
from linq_eval.registry import TaskInfo, descriptive_stats, registry
from linq_eval.run.estimate import TaskEstimate, side_kind, side_stats

_HARD_NEGATIVE_SUFFIX = "HardNegatives"
"""mteb's name suffix of the hard-negative versions of retrieval tasks."""
_SAME_LENGTH = 1e-3
"""Relative difference of average text lengths under which two sides count as equal."""

Prompts = Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class CacheReuse:
    """The estimated part of one task's tokens that the embedding cache already holds."""

    tokens: int
    """Estimated tokens already cached."""
    source: str
    """The task with a result file here whose texts they are."""
    basis: str
    """``same dataset``, ``hard-negative subset`` or ``same statistics``."""
    sides: tuple[str, ...]
    """The input sides counted (``queries``, ``documents``, ``text`` ...)."""


def estimate_reuse(
    tasks: Sequence[TaskInfo],
    estimates: Sequence[TaskEstimate],
    folder: Path,
    *,
    prompts_of: Callable[[list[str]], Prompts],
    cache_dir: Path | None,
) -> dict[str, CacheReuse]:
    """Task name -> what the cache already holds of it, for tasks without a result file in
    ``folder`` that have a relative with one. Empty without a (non-empty) cache folder."""
    if cache_dir is None or not cache_dir.is_dir() or not any(cache_dir.iterdir()):
        return {}
    known = registry().tasks
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    present = {p.stem: known[p.stem] for p in files if p.stem in known}
    reuse = {}
    for task, estimate in zip(tasks, estimates, strict=True):
        if task.name in present:
            continue
        hard_negative = task.name.endswith(_HARD_NEGATIVE_SUFFIX)
        parent_basis = "hard-negative subset" if hard_negative else "same statistics"
        relatives = [(t, "same dataset") for t in present.values() if _dataset(t) == _dataset(task)]
        relatives += [(present[p], parent_basis) for p in task.adapted_from if p in present]
        found = [_reuse_from(task, estimate, t, basis, prompts_of) for t, basis in relatives]
        best = max((c for c in found if c is not None), key=lambda c: c.tokens, default=None)
        if best is not None:
            reuse[task.name] = best
    return reuse


def _dataset(task: TaskInfo) -> tuple[str, str]:
    return str(task.dataset_path), str(task.dataset_revision)


def _reuse_from(
    task: TaskInfo,
    estimate: TaskEstimate,
    relative: TaskInfo,
    basis: str,
    prompts_of: Callable[[list[str]], Prompts],
) -> CacheReuse | None:
    """What ``task`` shares with ``relative`` on this basis, or None."""
    name, other = task.name, relative.name
    sides = list(estimate.side_tokens)
    if basis == "same statistics":
        mine = _side_profile(task, task.hf_subsets)
        theirs = _side_profile(relative, task.hf_subsets)
        sides = [s for s in sides if s in mine and s in theirs and _same(mine[s], theirs[s])]
    try:
        prompts = prompts_of([name, other])
    except LinqEvalError:  # the relative has no instruction in this set: nothing is shared
        return None
    sides = [
        s for s in sides if prompts[name].get(side_kind(s)) == prompts[other].get(side_kind(s))
    ]
    tokens = sum(estimate.side_tokens[s] for s in sides)
    return CacheReuse(tokens, other, basis, tuple(sides)) if tokens else None


def _side_profile(task: TaskInfo, subsets: Sequence[str]) -> dict[str, tuple[int, float]]:
    """Side -> (unique texts, average length) over the task's splits and ``subsets``."""
    stats = descriptive_stats(task) or {}
    totals: dict[str, tuple[int, float, int]] = {}
    for split in task.eval_splits:
        split_stats = stats.get(split)
        if not isinstance(split_stats, Mapping):
            return {}
        per_subset = split_stats.get("hf_subset_descriptive_stats") or {}
        parts = [per_subset[s] for s in subsets if s in per_subset] or [split_stats]
        for part in parts:
            for side, s in side_stats(part).items():
                unique, chars, texts = totals.get(side, (0, 0.0, 0))
                avg = float(s.get("average_text_length") or 0.0)
                n = round(s["total_text_length"] / avg) if avg else 0
                totals[side] = (
                    unique + int(s["unique_texts"]),
                    chars + s["total_text_length"],
                    texts + n,
                )
    return {side: (u, c / t if t else 0.0) for side, (u, c, t) in totals.items()}


def _same(a: tuple[int, float], b: tuple[int, float]) -> bool:
    return a[0] == b[0] and abs(a[1] - b[1]) <= _SAME_LENGTH * max(a[1], b[1], 1.0)


__all__ = ["CacheReuse", "Prompts", "estimate_reuse"]
