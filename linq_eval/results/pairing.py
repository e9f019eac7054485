"""A re-run of a published model beside its published row: the rows' order, and the run minus
the published score per task and per mean (data only; ``text_formats`` and ``report`` show it).

Example::

    from linq_eval.results.reading import load_baselines, load_results
    from linq_eval.results.tables import build_table
    table = build_table(load_results("runs/linq") + load_baselines("published-v2"),
                        "MTEB(eng, v2)")
    for pairing in table.pairs:
        print(pairing.label, pairing.means["Mean (Task)"].value, pairing.tasks["SCIDOCS"])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from linq_eval.results.metrics import same_computation

if TYPE_CHECKING:
    from linq_eval.results.tables import Row


@dataclass(frozen=True)
class Delta:
    """Run minus published in one mean column, over the tasks of the column both rows have."""

    value: float | None
    """The difference x100; None when the two rows share no task of the column."""
    n: int
    """Tasks of the column's set both rows have (in the same computation)."""
    total: int
    """Tasks in the column's set."""

    @property
    def complete(self) -> bool:
        """True when the difference covers every task of the column's set."""
        return self.value is not None and self.n == self.total


@dataclass(frozen=True)
class Pairing:
    """A re-run row and the published row of the same model."""

    published: Row
    """The baseline row (first one of the model in the table)."""
    run: Row
    """The row shown directly after it."""
    tasks: dict[str, float | None]
    """Task -> run minus published (x100), None unless both have it in the same computation."""
    means: dict[str, Delta]
    """Mean column -> its difference over the tasks both rows have."""
    different: tuple[str, ...] = ()
    """Tasks both rows have, but in different computations (no difference is taken)."""

    @property
    def model(self) -> str:
        return self.run.result_set.model

    @property
    def label(self) -> str:
        """The differences' row label: ``Δ vs Linq-Embed-Mistral (published-v2)``."""
        return f"Δ vs {self.published.label}"

    @property
    def title(self) -> str:
        """``Linq-Embed-Mistral @test vs Linq-Embed-Mistral (published-v2)``."""
        return f"{self.run.label} vs {self.published.label}"

    @property
    def common(self) -> list[str]:
        """The tasks with a difference, in table order."""
        return [t for t, d in self.tasks.items() if d is not None]

    def note(self) -> str:
        """What the pairing shows, for the table's notes."""
        text = (
            f"{self.run.label} re-runs {self.model}: shown after {self.published.label}, then "
            f"{self.label!r}, run minus published over the {len(self.common)} tasks both have "
            "(a mean's coverage says how many of its tasks that is)."
        )
        if self.different:
            text += (
                f" No difference for {', '.join(self.different)}: the two scores are different "
                "computations."
            )
        return text


def _paired_order(rows: Sequence[Row]) -> tuple[list[Row], list[tuple[Row, Row]]]:
    """The rows with each re-run moved directly after the first baseline row of its model
    (several re-runs of one model keep their order); other rows keep their places. Returns
    the new order and the (published, run) pairs, in that order."""
    published = {r.result_set.model: r for r in reversed(rows) if r.is_baseline}  # the first
    base_of = {
        id(row): published[row.result_set.model]
        for row in rows
        if not row.is_baseline and row.result_set.model in published
    }
    ordered: list[Row] = []
    pairs: list[tuple[Row, Row]] = []
    for row in rows:
        if id(row) in base_of:
            continue
        runs = [run for run in rows if base_of.get(id(run)) is row]
        ordered += [row, *runs]
        pairs += [(row, run) for run in runs]
    return ordered, pairs


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _pair(published: Row, run: Row, columns: Mapping[str, Sequence[Sequence[str]]]) -> Pairing:
    """The differences of ``run`` to ``published``. ``columns`` gives each mean column as the
    groups it averages (one group for a plain mean, one per type for a mean of type means)."""
    tasks: dict[str, float | None] = {}
    different = []
    for name, mine in run.scores.items():
        theirs = published.scores[name]
        tasks[name] = None
        if mine.score is None or theirs.score is None:
            continue
        if mine.metric and theirs.metric and not same_computation(mine.metric, theirs.metric):
            different.append(name)
            continue
        tasks[name] = mine.score - theirs.score
    means = {}
    for column, groups in columns.items():
        group_means = [_mean([d for t in g if (d := tasks[t]) is not None]) for g in groups]
        present = [m for m in group_means if m is not None]
        covered = {t for g in groups for t in g}
        both = sum(tasks[t] is not None for t in covered)
        means[column] = Delta(_mean(present), both, len(covered))
    return Pairing(published, run, tasks, means, tuple(different))


def pair_rows(
    rows: Sequence[Row], columns: Mapping[str, Sequence[Sequence[str]]]
) -> tuple[list[Row], list[Pairing]]:
    """``_paired_order`` and each pair's differences (see ``_pair``)."""
    ordered, pairs = _paired_order(rows)
    return ordered, [_pair(published, run, columns) for published, run in pairs]


__all__ = ["Delta", "Pairing", "pair_rows"]
