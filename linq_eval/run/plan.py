"""What a run will do, offline and with no model: its tasks, their size in texts and tokens
(``linq_eval.run.estimate``), and how to split them.

    linq-eval plan --shard 2/4                       # what job 2 of 4 will run
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from linq_eval.benchmarks import WHOLE_TASK
from linq_eval.errors import ConfigError
from linq_eval.profiles import (
    DEFAULT_PROFILE,
    PROFILES,
    REPRODUCTION_MAX_LENGTH,
    card_max_length,
)
from linq_eval.run.estimate import CHARS_PER_TOKEN, TaskEstimate

if TYPE_CHECKING:
    from linq_eval.run.cache_reuse import CacheReuse

DEFAULT_TOKENS_PER_S = 20_000.0
"""Throughput assumed for GPU-hours when none is given (a 7B model in bf16 on one H100)."""

_SHARED_CORPORA: tuple[tuple[str, ...], ...] = (("FEVER", "ClimateFEVER"),)
"""Tasks whose corpora are (nearly) the same texts: the embedding cache encodes them once, so
a plan counts the corpus once and shards keep such tasks together. FEVER's and ClimateFEVER's
corpora are the same 5.4M Wikipedia abstracts (5,416,568 and 5,416,593 unique texts)."""


@dataclass(frozen=True)
class Shard:
    """Job ``index`` of ``count`` (1-based), as given by ``--shard INDEX/COUNT``."""

    index: int
    """Which job this is, 1..count."""
    count: int
    """How many jobs share the task list."""

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ConfigError(f"--shard {self}: the number of shards must be at least 1")
        if not 1 <= self.index <= self.count:
            raise ConfigError(
                f"--shard {self}: the shard index must be between 1 and {self.count} "
                "(shards are numbered from 1)"
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/4"`` -> Shard(2, 4); anything else is an error saying what is expected."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
        if not match:
            raise ConfigError(
                f"--shard {text!r}: expected INDEX/COUNT such as 1/4 (job 1 of 4, numbered from 1)"
            )
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shared_corpus_of(name: str, names: Iterable[str]) -> str | None:
    """The task among ``names`` whose corpus ``name`` reuses (None if it encodes its own)."""
    present = list(names)
    for group in _SHARED_CORPORA:
        if name in group:
            members = [m for m in group if m in present]
            if members and members[0] != name:
                return members[0]
    return None


def assign_shards(estimates: Sequence[TaskEstimate], count: int) -> list[list[str]]:
    """Split tasks over ``count`` shards, balancing estimated tokens (LPT greedy: largest item
    first onto the least loaded, lower shard; tasks sharing a corpus are one item). Every job
    computes the same split; each shard lists its tasks in the input order."""
    if count < 1:
        raise ConfigError("the number of shards must be at least 1")
    by_name = {e.name: e for e in estimates}
    order = [e.name for e in estimates]
    items: list[tuple[int, list[str]]] = []
    grouped: set[str] = set()
    for group in _SHARED_CORPORA:
        members = [m for m in group if m in by_name]
        if len(members) > 1:
            tokens = sum(by_name[m].tokens for m in members)
            tokens -= sum(by_name[m].document_tokens for m in members[1:])
            items.append((tokens, members))
            grouped.update(members)
    items += [(e.tokens, [e.name]) for e in estimates if e.name not in grouped]
    items.sort(key=lambda item: (-item[0], order.index(item[1][0])))
    loads = [0] * count
    members_of: list[set[str]] = [set() for _ in range(count)]
    for tokens, members in items:
        target = min(range(count), key=lambda k: (loads[k], k))
        loads[target] += tokens
        members_of[target].update(members)
    return [[n for n in order if n in members_of[k]] for k in range(count)]


@dataclass(frozen=True)
class PlanRow:
    """One task of a plan."""

    estimate: TaskEstimate
    done: bool = False
    """Its results are complete in the output folder."""
    shares_corpus_with: str | None = None
    """A task of the same run whose corpus embeddings it reuses."""
    cached: CacheReuse | None = None
    """What earlier tasks in the folder left of it in the embedding cache (an estimate)."""
    splits: tuple[str, ...] = ()
    """The splits it is evaluated on."""
    subsets: tuple[str, ...] = ()
    """The language subsets (mteb's ``hf_subsets``) it is evaluated on."""
    whole: bool = False
    """The benchmark does not contain it: it runs with every subset and split mteb gives it."""

    @property
    def cached_tokens(self) -> int:
        """Estimated tokens already in the embedding cache (0 when done: nothing to encode)."""
        return 0 if self.done or self.cached is None else self.cached.tokens

    @property
    def tokens_to_encode(self) -> int:
        """Tokens left to encode: a shared corpus counted once, the cached ones left out."""
        if self.done:
            return 0
        tokens = self.estimate.tokens
        if self.shares_corpus_with:
            tokens -= self.estimate.document_tokens
        return max(0, tokens - self.cached_tokens)


@dataclass(frozen=True)
class Plan:
    """The tasks of one run (or shard) with their estimated cost."""

    model: str
    """Model name as mteb records it."""
    revision: str
    result_folder: str
    rows: list[PlanRow] = field(default_factory=list)
    """The tasks of this run (or shard)."""
    max_length: int = REPRODUCTION_MAX_LENGTH
    tokens_per_s: float = DEFAULT_TOKENS_PER_S
    """Throughput assumed for the time estimate."""
    shard: Shard | None = None
    all_tasks: int = 0
    """Tasks of the whole run before sharding."""
    benchmark: str = ""
    """The benchmark the tasks are taken from (with its subsets and splits)."""

    @property
    def total_tokens(self) -> int:
        return sum(r.estimate.tokens for r in self.rows)

    @property
    def tokens_to_encode(self) -> int:
        return sum(r.tokens_to_encode for r in self.rows)

    @property
    def done_tokens(self) -> int:
        """Tokens of the tasks whose results the folder already holds."""
        return sum(r.estimate.tokens for r in self.rows if r.done)

    @property
    def cached_tokens(self) -> int:
        """Estimated tokens of the other tasks already in the embedding cache."""
        return sum(r.cached_tokens for r in self.rows)

    @property
    def gpu_hours(self) -> float:
        return self.tokens_to_encode / self.tokens_per_s / 3600.0

    @property
    def card_length_tokens(self) -> int:
        """Tokens to encode at the card example's max_length (4096): this plan's estimate
        plus the texts' tails beyond its max_length (see ``TaskEstimate.tail_tokens``)."""
        card, extra = card_max_length(), 0.0
        for r in self.rows:
            docs, tail = not r.shares_corpus_with, r.estimate.tail_tokens  # a corpus counts once
            if not r.done:
                extra += tail(card, documents=docs) - tail(self.max_length, documents=docs)
        return self.tokens_to_encode + round(extra)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "revision": self.revision,
            "result_folder": self.result_folder,
            "shard": str(self.shard) if self.shard else None,
            "tokens_per_s": self.tokens_per_s,
            "max_length": self.max_length,
            "benchmark": self.benchmark,
            "tasks": {
                r.estimate.name: {
                    "type": r.estimate.type,
                    "splits": list(r.splits),
                    "subsets": list(r.subsets),
                    "in_benchmark": not r.whole,
                    "texts": r.estimate.texts,
                    "unique_texts": r.estimate.unique_texts,
                    "tokens": r.estimate.tokens,
                    "tokens_to_encode": r.tokens_to_encode,
                    "done": r.done,
                    "shares_corpus_with": r.shares_corpus_with,
                    "cached_tokens_estimate": r.cached_tokens,
                    "cached_from": _cached_from(r),
                    "statistics": r.estimate.known,
                }
                for r in self.rows
            },
            "total_tokens": self.total_tokens,
            "done_tokens": self.done_tokens,
            "cached_tokens_estimate": self.cached_tokens,
            "tokens_to_encode": self.tokens_to_encode,
            "gpu_hours": round(self.gpu_hours, 3),
            "at_card_max_length": {
                "max_length": card_max_length(),
                "tokens_to_encode": self.card_length_tokens,
                "gpu_hours": round(self.card_length_tokens / self.tokens_per_s / 3600.0, 3),
            },
        }


def _cached_from(row: PlanRow) -> dict[str, Any] | None:
    if not row.cached_tokens or row.cached is None:
        return None
    return {"task": row.cached.source, "basis": row.cached.basis, "sides": list(row.cached.sides)}


def duration(seconds: float) -> str:
    """``2d03h``, ``4h05m``, ``12m30s``, ``45s``."""
    s = round(seconds)
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def human(n: float) -> str:
    """A count in short: ``1.2G``, ``340k``, ``12``."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{unit}"
    return f"{n:.0f}"


def _describe_subsets(subsets: Sequence[str], most: int = 3) -> str:
    """A task's language subsets in short: ``en-en``, ``default``, ``11: ar-ar, en-ar ...``."""
    if len(subsets) <= most:
        return ", ".join(subsets) or "-"
    return f"{len(subsets)}: {', '.join(subsets[:most])} ..."


def _status(r: PlanRow) -> str:
    e = r.estimate
    if r.done:
        status = "done"
    elif not e.known:
        status = "to run (size unknown: no mteb statistics)"
    elif r.shares_corpus_with:
        status = f"to run (corpus cached with {r.shares_corpus_with})"
    elif r.cached_tokens and r.cached is not None:
        share = r.cached_tokens / e.tokens if e.tokens else 0.0
        shown = f"{share:.0%}" if share >= 0.005 else "<1%"
        status = f"to run (~{shown} cached: {r.cached.basis} as {r.cached.source})"
    else:
        status = "to run"
    return status + (f" - {WHOLE_TASK}" if r.whole else "")


def shard_line(plan: Plan) -> str:
    """What a shard holds, e.g. ``shard 1/2: 1 of 2 tasks: STS13`` (the first line a sharded
    run prints: a Slurm job's log says which tasks it has)."""
    names = " ".join(r.estimate.name for r in plan.rows)
    held = f"shard {plan.shard}: {len(plan.rows)} of {plan.all_tasks} tasks"
    return f"{held}: {names}" if names else held


def render_plan(plan: Plan) -> str:
    """The plan as a text table with totals: per task its splits and language subsets."""
    lines = [f"# model {plan.model} @ {plan.revision}  ->  {plan.result_folder}"]
    if plan.benchmark:
        lines.append(f"# tasks as {plan.benchmark} scores them (its splits and language subsets)")
    if plan.shard:
        lines.append(f"# {shard_line(plan)}")
    width = max([len(r.estimate.name) for r in plan.rows] + [4])
    scopes = [f"{'/'.join(r.splits)}: {_describe_subsets(r.subsets)}" for r in plan.rows]
    scope_width = max([len(s) for s in scopes] + [14])
    lines.append(
        f"{'task':{width}}  {'type':18} {'split: subsets':{scope_width}} {'texts':>8} "
        f"{'unique':>8} {'tokens':>8}  status"
    )
    for r, scope in zip(plan.rows, scopes, strict=True):
        e = r.estimate
        lines.append(
            f"{e.name:{width}}  {e.type:18} {scope:{scope_width}} {human(e.texts):>8} "
            f"{human(e.unique_texts):>8} {human(e.tokens):>8}  {_status(r)}"
        )
    done = sum(r.done for r in plan.rows)
    lines.append(
        f"# {len(plan.rows)} tasks ({done} done), {human(plan.total_tokens)} tokens in all, "
        f"{human(plan.tokens_to_encode)} to encode (max_length {plan.max_length}, "
        f"{CHARS_PER_TOKEN:g} chars/token)"
    )
    if plan.cached_tokens:
        total = plan.total_tokens or 1
        lines.append(
            f"# already here: {human(plan.done_tokens)} tokens in done tasks "
            f"({plan.done_tokens / total:.0%}), ~{human(plan.cached_tokens)} more in the "
            f"embedding cache ({plan.cached_tokens / total:.0%}, an estimate: texts that done "
            "tasks share with these)"
        )
    lines.append(
        f"# estimated {plan.gpu_hours:.2f} GPU-hours at {plan.tokens_per_s:,.0f} tokens/s "
        "(--tokens-per-s to change)"
    )
    lines += _max_length_lines(plan)
    return "\n".join(lines) + "\n"


def _max_length_lines(plan: Plan) -> list[str]:
    """What max_length the plan uses, and for Linq-Embed-Mistral what the card example's
    4096 would cost (other models' cards say other things)."""
    if plan.model != PROFILES[DEFAULT_PROFILE].mteb_name:
        return [f"# max_length {plan.max_length}"]
    lines = [
        (
            f"# max_length {plan.max_length} (the e5 evaluation code behind the published "
            f"scores: {REPRODUCTION_MAX_LENGTH}; the model card's usage example: "
            f"{card_max_length()})"
        )
    ]
    if plan.max_length < card_max_length() and plan.tokens_to_encode:
        long = plan.card_length_tokens
        more = 100.0 * (long - plan.tokens_to_encode) / plan.tokens_to_encode
        lines.append(
            f"# at max_length {card_max_length()}: about {human(long)} tokens to encode "
            f"({more:+.0f}%, lengths modelled as exponential around their means), "
            f"{long / plan.tokens_per_s / 3600.0:.2f} GPU-hours at the same tokens/s; more in "
            "practice (attention per token grows with length)"
        )
    return lines


__all__ = [
    "DEFAULT_TOKENS_PER_S",
    "Plan",
    "PlanRow",
    "Shard",
    "assign_shards",
    "duration",
    "human",
    "render_plan",
    "shard_line",
    "shared_corpus_of",
]
