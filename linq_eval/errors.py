"""Errors that linq-eval raises for bad input: each names the bad value and the valid choices."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

Suggest = Callable[[str, Sequence[str]], list[str]]
"""How the valid names closest to an unknown one are found (``did_you_mean`` by default)."""


class LinqEvalError(Exception):
    """Base class: an error the user can fix; the CLI prints it without a traceback."""


class UnknownNameError(LinqEvalError, KeyError):
    """An unknown task, benchmark, profile, policy or instruction set."""

    def __init__(
        self,
        kind: str,
        name: str,
        choices: Iterable[str],
        hint: str = "",
        where: str = "",
        suggest: Suggest | None = None,
    ) -> None:
        choices = sorted(set(choices))
        close = (suggest or did_you_mean)(name, choices)
        msg = f"Unknown {kind} {name!r}{f' in {where}' if where else ''}."
        if close:
            msg += f" Did you mean: {', '.join(repr(c) for c in close)}?"
        if len(choices) <= 20:
            msg += f" Available: {', '.join(choices)}."
        else:
            before, of, after = kind.partition(" of ")  # "task of X" -> "tasks of X"
            msg += f" ({len(choices)} known {before}s{of}{after}.)"
        if hint:
            msg += f" {hint}"
        super().__init__(msg)
        self.name = name
        self.suggestions = close

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ConfigError(LinqEvalError, ValueError):
    """A setting or file that cannot be used as given."""


class EncodingError(LinqEvalError):
    """Bad input text or a bad embedding, with the task, split and row it came from."""


class DriftError(LinqEvalError):
    """Run and reference were made with settings that change scores."""


class ResultsError(LinqEvalError, ValueError):
    """A result folder that cannot be read: missing, empty, or holding malformed files."""


class EvidenceError(LinqEvalError):
    """A per-query evidence file that cannot be read (truncated, not gzip, other JSON)."""


class DiskFullError(LinqEvalError):
    """A write failed for lack of space (or quota); the file it was replacing is unchanged."""


class LockHeldError(LinqEvalError):
    """Another process holds a lock: names what is locked and who holds it."""

    def __init__(self, message: str, holders: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.holders = holders or []


class TaskDataMissing(ConfigError):
    """Tasks with no folder under the data directory and no copy of their hub data."""


_MAX_REPORTED = 20
"""At most this many problems of one file are spelled out in an error message."""


class DataError(ConfigError):
    """A local data file that cannot be used: names the file and the line of each problem."""

    def __init__(self, path: Path, problems: Sequence[tuple[int | None, str]]) -> None:
        self.path = Path(path)
        self.problems = list(problems)
        self.line = self.problems[0][0] if self.problems else None
        shown = [
            f"{self.path}:{line}: {msg}" if line is not None else f"{self.path}: {msg}"
            for line, msg in self.problems[:_MAX_REPORTED]
        ]
        if len(self.problems) > _MAX_REPORTED:
            shown.append(f"... and {len(self.problems) - _MAX_REPORTED} more problems")
        if len(shown) == 1:
            msg = shown[0]
        else:
            msg = f"{len(self.problems)} problems in {self.path}:\n  " + "\n  ".join(shown)
        super().__init__(msg)


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The closest valid names to ``name`` (by spelling)."""
    return difflib.get_close_matches(name, sorted(set(choices)), n=n, cutoff=0.5)


class UnknownNamesError(UnknownNameError):
    """Several unknown names at once, each listed with its closest valid names."""

    def __init__(
        self,
        kind: str,
        names: list[str],
        choices: Iterable[str],
        what: str,
        suggest: Suggest | None = None,
    ) -> None:
        choices = sorted(set(choices))
        suggest = suggest or did_you_mean
        super().__init__(kind, names[0], choices, suggest=suggest)
        self.names = list(names)
        self.suggestions_by_name = {n: suggest(n, choices) for n in names}
        parts = []
        for n in names:
            close = self.suggestions_by_name[n]
            hint = f" (did you mean: {', '.join(repr(c) for c in close)}?)" if close else ""
            parts.append(f"{n!r}{hint}")
        self.args = (f"{what} {len(names)} {kind}(s): {'; '.join(parts)}.",)


def unknown_names(kind: str, names: list[str], choices: Iterable[str]) -> UnknownNameError:
    """The error for unknown ``names``: one with suggestions, or all of them listed."""
    if len(names) == 1:
        return UnknownNameError(kind, names[0], choices)
    return UnknownNamesError(kind, names, choices, what="Unknown")


__all__ = [
    "ConfigError",
    "DataError",
    "DiskFullError",
    "DriftError",
    "EncodingError",
    "EvidenceError",
    "LinqEvalError",
    "LockHeldError",
    "ResultsError",
    "Suggest",
    "TaskDataMissing",
    "UnknownNameError",
    "UnknownNamesError",
    "did_you_mean",
    "unknown_names",
]
