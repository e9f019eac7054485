"""What a run did: one ``TaskOutcome`` per task, the ``RunSummary``, and their text forms."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linq_eval.run.config import RunConfig
from linq_eval.run.plan import Plan, duration


@dataclass
class TaskOutcome:
    """What happened to one task in this run."""

    name: str
    type: str
    status: str
    """``done earlier``, ``evaluated`` or ``failed``."""
    main_metric: str
    """The task's main metric (ndcg_at_10, cosine_spearman, accuracy ...)."""
    score: float | None = None
    """Main score on mteb's 0..1 scale (None if failed)."""
    wall_s: float = 0.0
    """Seconds spent on the task in this run (data loading, encoding, scoring)."""
    tokens: int = 0
    """Tokens encoded in this run (cached texts excluded)."""
    tokens_per_s: float | None = None
    """Encoding throughput (tokens / encoding seconds)."""
    texts: int = 0
    """Texts the task passed to the encoder (duplicates included)."""
    encoded_texts: int = 0
    """Distinct texts run through the model."""
    cached_texts: int = 0
    """Distinct texts taken from the embedding cache."""
    unique_texts: int = 0
    """Distinct texts of each encode call (``encoded_texts`` + ``cached_texts`` with a cache)."""
    edge_cases: dict[str, int] = field(default_factory=dict)
    """Counted inputs (``EDGE_COUNTS``): ``truncated`` (cut at max_length; encoded texts
    only), ``empty`` (empty or whitespace-only), ``repaired`` (lone surrogates replaced), and
    ``skipped_blank_lines`` (blank lines after the last row of local data files)."""
    error: str | None = None
    data_source: str = ""
    """Where the task's data came from: ``hf://datasets/<path>@<rev>`` or a local folder."""
    instruction_from: str | None = None
    """The task whose instruction its inputs carry (its own, its parent's; None: none)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Its score-deciding settings (``run_record.SCORE_KEYS``), prompt hash and data included."""


@dataclass
class RunSummary:
    """What ``run_suite`` did."""

    config: RunConfig
    result_folder: Path
    """The ``<org__model>/<revision>`` folder of the results."""
    plan: Plan
    """The tasks of this run (or shard) with their estimates."""
    tasks: list[TaskOutcome] = field(default_factory=list)
    """One entry per task, in order (empty for a dry run)."""
    wall_s: float = 0.0
    """Seconds for the whole run."""
    cache: dict[str, int] | None = None
    """Embedding cache counters (hits, misses, chunks written, corrupt chunks)."""

    @property
    def failed(self) -> list[TaskOutcome]:
        return [t for t in self.tasks if t.status == "failed"]


def format_outcome(outcome: TaskOutcome, position: str = "") -> str:
    """One line: ``[2/3] SciFact  ndcg_at_10 64.51  1m02s  2,345 tok/s  5,483 texts``."""
    head = f"{position} {outcome.name}" if position else outcome.name
    if outcome.status == "failed":
        return f"{head}  FAILED: {outcome.error}"
    score = "-" if outcome.score is None else f"{100 * outcome.score:.2f}"
    if outcome.status == "done earlier":
        return f"{head}  {outcome.main_metric} {score}  (done earlier)"
    rate = f"{outcome.tokens_per_s:,.0f} tok/s" if outcome.tokens_per_s else "- tok/s"
    return (
        f"{head}  {outcome.main_metric} {score}  {duration(outcome.wall_s)}  {rate}  "
        f"{format_texts(outcome)}"
    )


def format_texts(outcome: TaskOutcome) -> str:
    """``2,758 texts (2,593 distinct: 2,552 encoded, 41 cached; 12 truncated, 3 empty)``:
    every count adds up (repeated texts are embedded once)."""
    parts = f"{outcome.unique_texts:,} distinct"
    if outcome.encoded_texts or outcome.cached_texts:
        parts += f": {outcome.encoded_texts:,} encoded, {outcome.cached_texts:,} cached"
    edges = [f"{n:,} {k.replace('_', ' ')}" for k, n in outcome.edge_cases.items() if n]
    if edges:
        parts += "; " + ", ".join(edges)
    return f"{outcome.texts:,} texts ({parts})"


def format_summary(summary: RunSummary) -> str:
    """The final table of scores (x100) with times, and where the results are."""
    rows = summary.tasks
    if not rows:
        return f"nothing to run; results in {summary.result_folder}\n"
    width = max(len(t.name) for t in rows)
    lines = [f"{'task':{width}}  {'type':18} {'metric':18} {'score':>7}  {'time':>7}  status"]
    for t in rows:
        score = "—" if t.score is None else f"{100 * t.score:.2f}"
        time_s = duration(t.wall_s) if t.status == "evaluated" else ""
        lines.append(
            f"{t.name:{width}}  {t.type:18} {t.main_metric:18} {score:>7}  {time_s:>7}  {t.status}"
        )
    scored = [t.score for t in rows if t.score is not None]
    if scored:
        mean = 100 * sum(scored) / len(scored)
        lines.append(f"mean of {len(scored)}/{len(rows)} tasks: {mean:.2f}")
    lines.append(f"results: {summary.result_folder}  ({duration(summary.wall_s)} in all)")
    return "\n".join(lines) + "\n"


EDGE_COUNTS = ("truncated", "empty", "repaired", "skipped_blank_lines")
"""The counted inputs of a task, kept in its run record entry and shown in its summary line."""

__all__ = [
    "EDGE_COUNTS",
    "RunSummary",
    "TaskOutcome",
    "format_outcome",
    "format_summary",
    "format_texts",
]
