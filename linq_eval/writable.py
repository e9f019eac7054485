"""Checking an output path before any work: a folder or file that cannot be written is an
error naming it, before a model loads or a table is built, never a traceback at the end.

The check writes and removes a probe file in the nearest folder that exists, so it answers
what the operating system will do (a read-only file system, a file where a folder should be,
permissions), also for root, whom permission bits do not stop.

    from linq_eval.writable import require_writable_folder, require_writable_file
    require_writable_folder("runs/linq", "--output")
    require_writable_file("scores.csv", "--output")
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from linq_eval.errors import LinqEvalError


class OutputPathError(LinqEvalError):
    """An output path that cannot be written."""


def require_writable_folder(
    path: str | os.PathLike[str], option: str, *, shown: Path | None = None
) -> Path:
    """``path`` is a folder, or can be created as one, and a file can be written in it.

    Returns the path; raises ``OutputPathError`` naming ``option``, the path (or ``shown``,
    the file to be written in it) and why.
    """
    path = Path(path).expanduser()
    shown = shown or path
    if path.exists() and not path.is_dir():
        what = "" if path == shown else f" {path}"
        raise OutputPathError(f"{option} {shown}:{what} is a file, not a folder.")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputPathError(
            f"{option} {shown}: cannot be created, {existing} is a file, not a folder."
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".linq-eval-probe-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        where = "" if existing == shown else f" (in {existing})"
        raise OutputPathError(
            f"{option} {shown}: cannot be written{where}: {exc.strerror or exc}."
        ) from None
    return path


def require_writable_file(path: str | os.PathLike[str], option: str) -> Path:
    """``path`` can be written as a file: not a folder, its folder writable or creatable."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputPathError(f"{option} {path}: is a folder, not a file.")
    require_writable_folder(path.parent, option, shown=path)
    return path


__all__ = ["OutputPathError", "require_writable_file", "require_writable_folder"]
