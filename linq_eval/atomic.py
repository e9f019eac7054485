"""Crash-safe files: atomic writes and inter-process locks.

A file written here is either its old content or its complete new content, never a prefix,
whatever kills the process: the bytes go to a temporary file in the same folder, are flushed
and fsynced, the temporary file is renamed over the target (atomic on POSIX file systems) and
the folder is fsynced so that the rename itself survives a crash.

Locks are ``flock`` locks on small files: the kernel releases them when their process dies,
SIGKILL included, so a killed run never leaves a stale lock behind. The lock file keeps the
holder's pid, host, start time and command line, for the message the next run shows. (On
network file systems ``flock`` works over NFSv4; Lustre needs the ``flock`` mount option.)

    from linq_eval.atomic import atomic_write_json, FileLock
    atomic_write_json(path, {"a": 1})
    with FileLock(folder / "SciFact.lock", what="task SciFact"):
        ...
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from linq_eval.errors import DiskFullError, LockHeldError
from linq_eval.provenance import now

TMP_MARK = ".tmp-"
"""Temporary files are named ``.<name>.tmp-<host>-<pid>-<random>`` beside their target."""

_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def disk_full_error(exc: BaseException, path: str | os.PathLike[str]) -> DiskFullError | None:
    """The clear error for ``exc`` when it is a full disk or quota, writing ``path``; else None."""
    if not isinstance(exc, OSError) or exc.errno not in _DISK_FULL_ERRNOS:
        return None
    what = "The disk quota is exceeded" if exc.errno == errno.EDQUOT else "The disk is full"
    return DiskFullError(
        f"{what}: could not write {path}. Its previous content, if any, is unchanged and "
        f"finished work is kept: free some space (df -h {Path(path).parent}) and rerun."
    )


def scratch_prefix() -> str:
    """``<host>-<pid>-``: the owner of a temporary file or scratch folder, so that
    ``remove_stale_temporaries`` knows it."""
    return f"{socket.gethostname()}-{os.getpid()}-"


def _dead_owner(tag: str) -> bool:
    """``<host>-<pid>-<rest>`` names a process of this host that is gone."""
    parts = tag.rsplit("-", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    if int(parts[1]) == os.getpid():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: alive, someone else's
        return False
    return False


def remove_stale_temporaries(root: str | os.PathLike[str], scratch: str | None = None) -> int:
    """Delete temporary files (and ``scratch`` folders) left under ``root`` by killed processes.

    Only those of dead processes on this host: a live writer, or one on another host sharing
    the folder, is never disturbed. Returns how many were removed.
    """
    root = Path(root)
    removed = 0
    if root.is_dir():
        for tmp in root.rglob(f".*{TMP_MARK}*"):
            if tmp.is_file() and _dead_owner(tmp.name.rsplit(TMP_MARK, 1)[1]):
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                    removed += 1
    if scratch and (root / scratch).is_dir():
        for folder in (root / scratch).iterdir():
            if folder.is_dir() and _dead_owner(folder.name):
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
    return removed


def _fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` durable (no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a file that someone else wrote to stable storage."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically.

    For writers that want a path, not a file object (``TaskResult.to_disk``). On an
    exception the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}{TMP_MARK}{scratch_prefix()}{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        full = disk_full_error(exc, target)
        if full is not None:
            raise full from exc
        raise
    _fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """``open`` for writing whose result appears atomically at ``path`` when the block ends
    (closed, then fsynced and renamed by ``atomic_path``)."""
    if "w" not in mode:
        raise ValueError(f"atomic_open writes whole files; mode {mode!r} has no 'w'")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON (UTF-8, trailing newline) to ``path`` atomically."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False, default=str)
    atomic_write_text(path, text + "\n")


class _HashingWriter:
    """A write-only file wrapper that hashes what passes through it."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.sha256 = hashlib.sha256()

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.sha256.update(view)
        return self._f.write(view)

    def flush(self) -> None:
        self._f.flush()


def atomic_save_npy(path: str | os.PathLike[str], array: np.ndarray) -> str:
    """Save ``array`` as ``.npy`` atomically; returns the sha256 hex digest of the file."""
    with atomic_open(path, "wb") as f:
        writer = _HashingWriter(f)
        np.lib.format.write_array(writer, np.ascontiguousarray(array), allow_pickle=False)
    return writer.sha256.hexdigest()


def sha256_file(path: str | os.PathLike[str], block: int = 1 << 22) -> str:
    """sha256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- locks


class FileLock:
    """An exclusive ``flock`` on ``path``, recording the holder in the file.

    ``acquire(timeout=0)`` fails at once with ``LockHeldError`` when the lock is held;
    a positive timeout waits that many seconds first; ``None`` waits forever.
    Locks are per open file, so two ``FileLock`` objects conflict even in one process.
    """

    def __init__(self, path: str | os.PathLike[str], what: str = "") -> None:
        self.path = Path(path)
        self.what = what or str(self.path)
        self._fd: int | None = None

    def acquire(self, timeout: float | None = 0) -> FileLock:
        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if deadline is not None and time.monotonic() >= deadline:
                    try:  # what the lock file says about its holder ({}: nothing readable)
                        holder = json.loads(self.path.read_text(encoding="utf-8") or "{}")
                    except (OSError, ValueError):
                        holder = {}
                    os.close(fd)
                    raise LockHeldError(
                        f"{self.what} is locked by {describe_holder(holder)}", [holder]
                    ) from None
                time.sleep(0.05)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": now(),
            "command": " ".join(sys.argv),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> FileLock:
        return self.acquire(timeout=None)

    def __exit__(self, *exc: object) -> None:
        self.release()


def describe_holder(holder: dict[str, Any]) -> str:
    """``pid 123 on host node7 since 2025-01-01T10:00:00+00:00 (linq-eval run ...)``."""
    if not holder:
        return "another process"
    text = f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"
    if holder.get("started"):
        text += f" since {holder['started']}"
    if holder.get("command"):
        text += f" ({holder['command']})"
    return text


__all__ = [
    "TMP_MARK",
    "FileLock",
    "atomic_open",
    "atomic_path",
    "atomic_save_npy",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "describe_holder",
    "disk_full_error",
    "fsync_file",
    "remove_stale_temporaries",
    "scratch_prefix",
    "sha256_file",
]
