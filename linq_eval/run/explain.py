"""``linq-eval explain``: when a run's score misses its reference, find the setting that closes
the gap.

For every task of a run whose score lies further than the tolerance from its reference's (a
published score or another run), the task is scored again under each usual suspect
(``linq_eval.run.gap_candidates``), one change at a time from the run's own recorded settings,
on the data the run read, with the run's model and revision. A candidate whose score lands
within the tolerance of the reference explains the gap.

It costs what it must: the plan (texts and tokens each candidate encodes) is known before any
model loads (``--dry-run`` stops there); a candidate that keeps the run's embedding identity
(an instruction change) finds every input whose prompt it does not change in the run's
embedding cache, so it encodes the changed side only. Each candidate's results go to their own
folder, ``<output>/.linq_eval/explain/<setting>=<value>/`` with its run record, never into the
run's; ``table`` and ``compare`` read them like any run. The verdicts are kept beside them
(``<output>/.linq_eval/explain.json``), where the HTML report finds them.

    from linq_eval.run.explain import explain
    found = explain("runs/minilm-64", "published:sentence-transformers/all-MiniLM-L6-v2",
                    tasks=["SciFact"], tolerance=0.05)
    found.verdicts[0].explained_by          # ['max_length=256']
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linq_eval.atomic import atomic_write_json
from linq_eval.benchmarks import DEFAULT_BENCHMARK
from linq_eval.errors import ResultsError
from linq_eval.paths import CACHE_SUBDIR, EXPLAIN_SUBDIR, EXPLAIN_VERDICTS
from linq_eval.profiles import GIVEN_OPTIONS, Profile, profile_of_run
from linq_eval.prompts.instruction_sets import available_instruction_sets
from linq_eval.registry import registry
from linq_eval.results.compare import DEFAULT_TOLERANCE, compare_results
from linq_eval.results.metrics import score_task
from linq_eval.results.reading import ResultSet, load_results, resolve_one
from linq_eval.run.config import RunConfig
from linq_eval.run.estimate import estimate_task, side_kind
from linq_eval.run.gap_candidates import Candidate, candidates_for
from linq_eval.run.plan import DEFAULT_TOKENS_PER_S
from linq_eval.run_record import IDENTITY_KEYS, is_hub_source, task_settings


@dataclass(frozen=True)
class Gap:
    """A task whose run score lies further than the tolerance from the reference's."""

    task: str
    type: str
    run: float
    """The run's score (x100), in the reference's metric."""
    reference: float
    """The reference's score (x100)."""
    metric: str | None

    @property
    def delta(self) -> float:
        return self.run - self.reference


@dataclass(frozen=True)
class Cost:
    """What one candidate encodes, before it runs."""

    candidate: str
    tasks: tuple[str, ...]
    texts: int
    """Distinct texts it encodes (the sides its change touches)."""
    tokens: int
    """Their estimated tokens."""
    cached_texts: int
    """Distinct texts it finds in the run's embedding cache (sides whose input is unchanged)."""


@dataclass(frozen=True)
class Tried:
    """One candidate's score on one task."""

    candidate: str
    score: float | None
    """Its score (x100), None when it could not be made."""
    distance: float | None
    """Its score minus the reference's."""
    within: bool
    """Within the tolerance of the reference: it explains the gap."""
    encoded_texts: int = 0
    cached_texts: int = 0
    wall_s: float = 0.0


@dataclass
class Verdict:
    """What explains one gap."""

    gap: Gap
    tried: list[Tried] = field(default_factory=list)

    @property
    def explained_by(self) -> list[str]:
        return [t.candidate for t in self.tried if t.within]

    def describe(self) -> str:
        found = self.explained_by
        if not found:
            return "none of the candidates explains it"
        if len(found) == 1:
            return f"explained by {found[0]}"
        return f"explained by each of {', '.join(found)}"


@dataclass
class Explanation:
    """The outcome of ``explain``."""

    run: ResultSet
    reference: ResultSet
    tolerance: float
    gaps: list[Gap]
    costs: list[Cost]
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tokens_per_s: float = DEFAULT_TOKENS_PER_S
    ran: bool = False
    """Whether the candidates were run (False for a plan: ``dry_run``)."""

    @property
    def passed(self) -> bool:
        """Every gap explained, none beyond the tolerance, or a plan (nothing measured)."""
        return all(v.explained_by for v in self.verdicts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run.ref,
            "reference": self.reference.ref,
            "tolerance": self.tolerance,
            "passed": self.passed,
            "gaps": [{**_plain(g), "delta": g.delta} for g in self.gaps],
            "costs": [_plain(c) for c in self.costs],
            "verdicts": [
                {
                    "task": v.gap.task,
                    "verdict": v.describe(),
                    "explained_by": v.explained_by,
                    "tried": [_plain(t) for t in v.tried],
                }
                for v in self.verdicts
            ],
            "notes": self.notes,
        }


def _plain(obj: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(obj).items()}


def explain(
    run: str,
    reference: str,
    *,
    benchmark: str = DEFAULT_BENCHMARK,
    tasks: Sequence[str] | None = None,
    task_types: Sequence[str] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    candidates: Sequence[str] = (),
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    dry_run: bool = False,
    tokens_per_s: float = DEFAULT_TOKENS_PER_S,
    echo: Callable[[str], None] | None = None,
) -> Explanation:
    """Find the settings that close the run's gaps to the reference (module docstring).

    ``data_dir``: where the run's local data lies now (default: where its record says);
    ``cache_dir``: the run's embedding cache (default: its output's); ``candidates``: only
    these (``max_length`` or ``max_length=256``).
    """
    rs, ref = resolve_one(run, "run"), resolve_one(reference, "reference")
    if not rs.run_record:
        raise ResultsError(
            f"{rs.path} has no run record (linq_eval/run.json): explain re-scores a run of "
            "`linq-eval run`, whose settings it records."
        )
    output = rs.path.parent.parent  # <output>/<org__model>/<revision>
    compared = compare_results(
        rs,
        ref,
        benchmark=benchmark,
        tasks=tasks,
        task_types=task_types,
        tolerance=tolerance,
        allow_drift=True,
    )
    gaps = [
        Gap(t.task, t.type, t.run, t.reference, t.reference_metric)  # type: ignore[arg-type]
        for t in compared.tasks
        if t.delta is not None and not t.metric_changed and abs(round(t.delta, 9)) > tolerance
    ]
    cache_dir = cache_dir if cache_dir is not None else output / CACHE_SUBDIR
    groups = _groups(rs, gaps, data_dir)
    plans = [
        (group, candidate)
        for group in groups
        for candidate in candidates_for(group.profile, group.own, candidates)
    ]
    found = Explanation(rs, ref, tolerance, gaps, [], tokens_per_s=tokens_per_s)
    found.costs = [_cost(group, c, cache_dir) for group, c in plans]
    if not gaps or dry_run:
        return found
    verdicts = {g.task: Verdict(g) for g in gaps}
    for group, candidate in plans:
        folder = output / EXPLAIN_SUBDIR / candidate.id
        started = time.perf_counter()
        summary = _run_candidate(group, candidate, compared.benchmark, folder, cache_dir, echo)
        wall = time.perf_counter() - started
        scores = _scores(folder, group, ref, compared.benchmark)
        for gap in group.gaps:
            outcome = next((o for o in summary.tasks if o.name == gap.task), None)
            score = scores.get(gap.task)
            distance = None if score is None else score - gap.reference
            verdicts[gap.task].tried.append(
                Tried(
                    candidate.id,
                    score,
                    distance,
                    distance is not None and abs(round(distance, 9)) <= tolerance,
                    encoded_texts=getattr(outcome, "encoded_texts", 0),
                    cached_texts=getattr(outcome, "cached_texts", 0),
                    wall_s=round(wall, 1),
                )
            )
    found.verdicts = list(verdicts.values())
    found.ran = True
    atomic_write_json(output / EXPLAIN_VERDICTS, found.as_dict())
    return found


@dataclass(frozen=True)
class _Group:
    """Gaps made with one set of settings, on data in one place."""

    own: Profile
    """The model's own profile (as shipped)."""
    profile: Profile
    """The run's profile with its recorded settings (where each candidate starts)."""
    random_init: str | None
    data_dir: Path | None
    gaps: tuple[Gap, ...]


def _groups(rs: ResultSet, gaps: Sequence[Gap], data_dir: Path | None) -> list[_Group]:
    """The gaps grouped by the settings they were made with and where their data lies."""
    record = rs.run_record or {}
    found: dict[tuple[Any, ...], list[Gap]] = {}
    made: dict[tuple[Any, ...], tuple[Profile, Profile, str | None, Path | None]] = {}
    for gap in gaps:
        settings = {**(record.get("settings") or {}), **(task_settings(record, gap.task)[0] or {})}
        if settings.get("instructions") not in available_instruction_sets():
            settings["instructions"] = settings.get("instructions_file")  # the user's own file
        own, profile, random_init = profile_of_run(settings)
        where = data_dir if data_dir is not None else _data_dir_of(record, gap.task)
        key = (profile, random_init, where)
        found.setdefault(key, []).append(gap)
        made[key] = (own, profile, random_init, where)
    return [_Group(*made[key], tuple(g)) for key, g in found.items()]


def _data_dir_of(record: dict[str, Any], task: str) -> Path | None:
    """The data folder a task was read from (the folder holding its own), None for the hub."""
    source = ((record.get("tasks") or {}).get(task) or {}).get("data_source")
    if is_hub_source(source):
        return None
    return Path(str(source).split(" + ")[0]).parent


def _cost(group: _Group, candidate: Candidate, cache_dir: Path) -> Cost:
    """Texts and tokens the candidate encodes: every side of every task, but where it keeps
    the embedding identity and the run's cache holds inputs, the sides whose prompt it does
    not change."""
    from linq_eval.model.resolved import resolve

    before, after = resolve(group.profile), resolve(candidate.applied(group.profile))
    keeps_identity = candidate.suspect.setting not in IDENTITY_KEYS and cache_dir.is_dir()
    names = [g.task for g in group.gaps]
    old, new = before.prompts(names), after.prompts(names)
    texts = tokens = cached = 0
    for name in names:
        estimate = estimate_task(
            registry().task(name), max_length=after.profile.max_length, prompts=new
        )
        for (is_doc, n, _, _), (side, side_tokens) in zip(
            estimate.sides, estimate.side_tokens.items(), strict=False
        ):
            kind = "document" if is_doc else side_kind(side)
            if keeps_identity and old[name].get(kind) == new[name].get(kind):
                cached += n
            else:
                texts += n
                tokens += side_tokens
    return Cost(candidate.id, tuple(names), texts, tokens, cached)


def _run_candidate(
    group: _Group,
    candidate: Candidate,
    benchmark: str,
    folder: Path,
    cache_dir: Path,
    echo: Callable[[str], None] | None,
) -> Any:
    """The candidate's run of the group's tasks, into its own folder."""
    from linq_eval.run.runner import run_suite  # loads torch: only when candidates run

    profile = candidate.applied(group.profile)
    given = {key: getattr(profile, key) for key in GIVEN_OPTIONS}
    if group.random_init:
        given.pop("revision")
    config = RunConfig(
        model=profile.model if not group.random_init else RunConfig.model,
        random_init=group.random_init,
        benchmark=benchmark,
        tasks=tuple(g.task for g in group.gaps),
        data_dir=group.data_dir,
        output=folder,
        cache_dir=cache_dir,
        progress=False,  # the suite's progress line, without the per-call bars
        **given,
    )
    if echo:
        echo(f"# {candidate.id}: {', '.join(config.tasks)} -> {folder}")
    return run_suite(config, echo=echo)


def _scores(folder: Path, group: _Group, ref: ResultSet, benchmark: str) -> dict[str, float]:
    """Each gap task's score in the candidate's folder, in the reference's metric."""
    (rs,) = load_results(folder)
    tasks = {t.name: t for t in registry().benchmark(benchmark).tasks}
    out = {}
    for gap in group.gaps:
        task = tasks.get(gap.task) or registry().task(gap.task)
        score = score_task(rs, task, gap.metric)
        if score.score is not None:
            out[gap.task] = score.score
    return out


def render_explanation(found: Explanation, fmt: str = "text", decimals: int = 2) -> str:
    """The plan and the verdicts as text, markdown or json."""
    if fmt == "json":
        return json.dumps(found.as_dict(), indent=2) + "\n"
    md = fmt == "markdown"
    title = f"{found.run.ref} vs {found.reference.ref} (tolerance {found.tolerance:g} points x100)"
    out = [f"**Explain**: {title}" if md else f"Explain: {title}", ""]
    if not found.gaps:
        out.append("No task is further than the tolerance from the reference: nothing to explain.")
        return "\n".join(out) + "\n"
    out.append(
        f"{len(found.gaps)} gap(s): "
        + "; ".join(
            f"{g.task} {g.run:.{decimals}f} vs {g.reference:.{decimals}f} ({g.delta:+.{decimals}f})"
            for g in found.gaps
        )
    )
    out += ["", *_cost_lines(found, md), ""]
    for verdict in found.verdicts:
        out += _verdict_lines(verdict, decimals, md) + [""]
    if found.ran:
        unexplained = [v.gap.task for v in found.verdicts if not v.explained_by]
        out.append(
            "EXPLAINED: every gap."
            if not unexplained
            else f"UNEXPLAINED: {', '.join(unexplained)}."
        )
    return "\n".join(out) + "\n"


def _cost_lines(found: Explanation, md: bool) -> list[str]:
    from linq_eval.run.plan import duration, human

    head = ["candidate", "tasks", "texts to encode", "tokens", "from cache", "at tokens/s"]
    rows = [
        [
            c.candidate,
            str(len(c.tasks)),
            human(c.texts),
            human(c.tokens),
            human(c.cached_texts),
            duration(c.tokens / found.tokens_per_s),
        ]
        for c in found.costs
    ]
    total = sum(c.tokens for c in found.costs)
    note = (
        f"plan: {len(found.costs)} candidate(s), {human(total)} tokens to encode, about "
        f"{duration(total / found.tokens_per_s)} at {found.tokens_per_s:,.0f} tokens/s"
    )
    return [*_table(head, rows, md), "", note]


def _verdict_lines(verdict: Verdict, decimals: int, md: bool) -> list[str]:
    gap = verdict.gap
    head = ["candidate", "score", "minus reference", "texts encoded", "from cache", "seconds"]
    rows = [
        [
            t.candidate,
            _num(t.score, decimals),
            _num(t.distance, decimals, signed=True),
            str(t.encoded_texts),
            str(t.cached_texts),
            f"{t.wall_s:g}",
        ]
        for t in verdict.tried
    ]
    title = (
        f"{gap.task}: run {gap.run:.{decimals}f}, reference {gap.reference:.{decimals}f} "
        f"({gap.delta:+.{decimals}f})"
    )
    return [f"**{title}**" if md else title, *_table(head, rows, md), f"=> {verdict.describe()}"]


def _num(value: float | None, decimals: int, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def _table(head: list[str], rows: list[list[str]], md: bool) -> list[str]:
    if md:
        return [
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
            *("| " + " | ".join(r) + " |" for r in rows),
        ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [head, *rows]
    ]


__all__ = ["Cost", "Explanation", "Gap", "Tried", "Verdict", "explain", "render_explanation"]
