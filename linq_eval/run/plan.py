"""What a run will do: its tasks, their size in texts and tokens, and how to split them.

Everything here is offline and needs no model: the tasks come from linq_eval.benchmarks (mteb's
registry and benchmarks), the sizes from the descriptive statistics mteb ships per task (number of
texts, unique texts and characters per input side). Tokens are estimated from characters
(``CHARS_PER_TOKEN``), with the instruction prefix added and truncation at max_length.

    linq-eval plan                                   # the MTEB(eng, v1) suite, GPU-hours
    linq-eval plan --tasks SciFact NFCorpus --tokens-per-s 20000
    linq-eval plan --shard 2/4                       # what job 2 of 4 will run
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from linq_eval.errors import ConfigError
from linq_eval.model.profiles import CARD_MAX_LENGTH

if TYPE_CHECKING:
    from mteb.abstasks.abstask import AbsTask

    from linq_eval.run.cache_reuse import CacheReuse

CHARS_PER_TOKEN = 4.0
"""English characters per token: 3.9 for Mistral's tokenizer on SciFact, 4.5 for BERT's."""

DEFAULT_TOKENS_PER_S = 20_000.0
"""Throughput assumed for GPU-hours when none is given (a 7B model in bf16 on one H100)."""

SHARED_CORPORA: tuple[tuple[str, ...], ...] = (("FEVER", "ClimateFEVER"),)
"""Tasks whose corpora are (nearly) the same texts: the embedding cache encodes them once, so
a plan counts the corpus once and shards keep such tasks together. FEVER's and ClimateFEVER's
corpora are the same 5.4M Wikipedia abstracts (5,416,568 and 5,416,593 unique texts)."""

QUERY_SIDES = ("queries", "text1", "text", "sentence1")
"""Descriptive-statistics sides encoded with the query prompt type; the others are documents."""


# --------------------------------------------------------------------------- shards


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


# --------------------------------------------------------------------------- estimates


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
    sides: tuple[tuple[bool, int, float, float], ...] = ()
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


def _side_stats(split_stats: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
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
    stats = meta.descriptive_stats
    if not stats or any(split not in stats for split in task.eval_splits):
        return TaskEstimate(meta.name, meta.type, known=False)
    prefix = (prompts or {}).get(meta.name, {})
    texts = unique = tokens = doc_tokens = 0
    side_tokens: dict[str, int] = {}
    sizes: list[tuple[bool, int, float, float]] = []

    def add(
        side: str, n_texts: int, n_unique: int, avg_chars: float, max_chars: float = 0.0
    ) -> None:
        nonlocal texts, unique, tokens, doc_tokens
        kind = side_kind(side)
        extra = len(prefix.get(kind, "")) / chars_per_token + special_tokens
        chars = avg_chars + len(prefix.get(kind, ""))
        per_text = min(max_length, math.ceil(chars / chars_per_token) + special_tokens)
        longest = max(max_chars, avg_chars) / chars_per_token + extra
        sizes.append((kind == "document", n_unique, avg_chars / chars_per_token + extra, longest))
        texts += n_texts
        unique += n_unique
        tokens += n_unique * per_text
        side_tokens[side] = side_tokens.get(side, 0) + n_unique * per_text
        if kind == "document":
            doc_tokens += n_unique * per_text

    for split in task.eval_splits:
        for part in _split_parts(task, stats[split]):
            sides = _side_stats(part)
            for side, s in sides.items():
                avg = float(s.get("average_text_length") or 0.0)
                n = round(s["total_text_length"] / avg) if avg else 0
                add(side, n, int(s["unique_texts"]), avg, float(s.get("max_text_length") or 0))
            labels = (part.get("label_statistics") or {}).get("unique_labels")
            if meta.type == "Classification" and labels and "text" in sides:
                # Few-shot training texts: samples_per_label x labels, in each experiment.
                n_train = (
                    int(getattr(task, "samples_per_label", 8))
                    * int(labels)
                    * int(getattr(task, "n_experiments", 10))
                )
                add("text", n_train, n_train, float(sides["text"].get("average_text_length", 0)))
    return TaskEstimate(
        meta.name, meta.type, texts, unique, tokens, doc_tokens, side_tokens=side_tokens,
        sides=tuple(sizes),
    )  # fmt: skip


def side_kind(side: str) -> str:
    """``query`` or ``document``: which prompt an input side of the statistics receives."""
    return "query" if side in QUERY_SIDES else "document"


def shared_corpus_of(name: str, names: Iterable[str]) -> str | None:
    """The task among ``names`` whose corpus ``name`` reuses (None if it encodes its own)."""
    present = list(names)
    for group in SHARED_CORPORA:
        if name in group:
            members = [m for m in group if m in present]
            if members and members[0] != name:
                return members[0]
    return None


def assign_shards(estimates: Sequence[TaskEstimate], count: int) -> list[list[str]]:
    """Split tasks over ``count`` shards, balancing estimated tokens (LPT greedy).

    Largest item first onto the least loaded shard (ties: the lower shard); tasks sharing a
    corpus form one item. Deterministic: every job computes the same split. Each shard lists
    its tasks in the input order.
    """
    if count < 1:
        raise ConfigError("the number of shards must be at least 1")
    by_name = {e.name: e for e in estimates}
    order = [e.name for e in estimates]
    items: list[tuple[int, list[str]]] = []
    grouped: set[str] = set()
    for group in SHARED_CORPORA:
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


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class PlanRow:
    """One task of a plan."""

    estimate: TaskEstimate
    """Its size."""
    done: bool = False
    """Its results are complete in the output folder."""
    shares_corpus_with: str | None = None
    """A task of the same run whose corpus embeddings it reuses."""
    cached: CacheReuse | None = None
    """Estimated part of its tokens that earlier tasks in the folder left in the embedding
    cache (``linq_eval.run.cache_reuse``)."""

    @property
    def cached_tokens(self) -> int:
        """Estimated tokens already in the embedding cache (0 when done: nothing to encode)."""
        return 0 if self.done or self.cached is None else self.cached.tokens

    @property
    def tokens_to_encode(self) -> int:
        """Tokens left to encode (0 when done; the corpus counted once when shared; less the
        estimated cached tokens)."""
        if self.done:
            return 0
        tokens = self.estimate.tokens
        if self.shares_corpus_with:
            tokens -= self.estimate.document_tokens
        return max(0, tokens - self.cached_tokens)

    def extra_tokens_at(self, max_length: int, current: int) -> float:
        """Tokens to encode at ``max_length`` beyond those at ``current`` (tail model)."""
        if self.done:
            return 0.0
        docs = not self.shares_corpus_with
        tail = self.estimate.tail_tokens
        return tail(max_length, documents=docs) - tail(current, documents=docs)


@dataclass(frozen=True)
class Plan:
    """The tasks of one run (or shard) with their estimated cost."""

    model: str
    """Model name as mteb records it."""
    revision: str
    """Model revision."""
    result_folder: str
    """Where the task results go."""
    rows: list[PlanRow] = field(default_factory=list)
    """The tasks of this run (or shard)."""
    max_length: int = 512
    """Tokens per input at most."""
    tokens_per_s: float = DEFAULT_TOKENS_PER_S
    """Throughput assumed for the time estimate."""
    shard: Shard | None = None
    """The shard this plan is for."""
    all_tasks: int = 0
    """Tasks of the whole run before sharding."""

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
        extra = sum(r.extra_tokens_at(CARD_MAX_LENGTH, self.max_length) for r in self.rows)
        return self.tokens_to_encode + round(extra)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "revision": self.revision,
            "result_folder": self.result_folder,
            "shard": str(self.shard) if self.shard else None,
            "tokens_per_s": self.tokens_per_s,
            "max_length": self.max_length,
            "tasks": {
                r.estimate.name: {
                    "type": r.estimate.type,
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
                "max_length": CARD_MAX_LENGTH,
                "tokens_to_encode": self.card_length_tokens,
                "gpu_hours": round(self.card_length_tokens / self.tokens_per_s / 3600.0, 3),
            },
        }


def _cached_from(row: PlanRow) -> dict[str, Any] | None:
    if not row.cached_tokens or row.cached is None:
        return None
    return {"task": row.cached.source, "basis": row.cached.basis, "sides": list(row.cached.sides)}


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{unit}"
    return f"{n:.0f}"


def render_plan(plan: Plan) -> str:
    """The plan as a text table with totals."""
    lines = [
        f"# model {plan.model} @ {plan.revision}  ->  {plan.result_folder}",
    ]
    if plan.shard:
        lines.append(f"# shard {plan.shard}: {len(plan.rows)} of {plan.all_tasks} tasks")
    width = max([len(r.estimate.name) for r in plan.rows] + [4])
    lines.append(f"{'task':{width}}  {'type':18} {'texts':>8} {'unique':>8} {'tokens':>8}  status")
    for r in plan.rows:
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
        lines.append(
            f"{e.name:{width}}  {e.type:18} {_human(e.texts):>8} {_human(e.unique_texts):>8} "
            f"{_human(e.tokens):>8}  {status}"
        )
    done = sum(r.done for r in plan.rows)
    lines.append(
        f"# {len(plan.rows)} tasks ({done} done), {_human(plan.total_tokens)} tokens in all, "
        f"{_human(plan.tokens_to_encode)} to encode (max_length {plan.max_length}, "
        f"{CHARS_PER_TOKEN:g} chars/token)"
    )
    if plan.cached_tokens:
        total = plan.total_tokens or 1
        lines.append(
            f"# already here: {_human(plan.done_tokens)} tokens in done tasks "
            f"({plan.done_tokens / total:.0%}), ~{_human(plan.cached_tokens)} more in the "
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
    """What max_length the plan uses, and what the card example's 4096 would cost."""
    lines = [
        (
            f"# max_length {plan.max_length} (the e5 evaluation code behind the published "
            f"scores: 512; the model card's usage example: {CARD_MAX_LENGTH})"
        )
    ]
    if plan.max_length < CARD_MAX_LENGTH and plan.tokens_to_encode:
        long = plan.card_length_tokens
        more = 100.0 * (long - plan.tokens_to_encode) / plan.tokens_to_encode
        lines.append(
            f"# at max_length {CARD_MAX_LENGTH}: about {_human(long)} tokens to encode "
            f"({more:+.0f}%, lengths modelled as exponential around their means), "
            f"{long / plan.tokens_per_s / 3600.0:.2f} GPU-hours at the same tokens/s; more in "
            "practice (attention per token grows with length)"
        )
    return lines
