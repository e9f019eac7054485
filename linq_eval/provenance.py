"""What a record says of where it came from: the installed packages' versions and the time.

One helper for each: every run record, check record, cache identity, report and benchmark
reads versions through ``package_version`` and stamps times with ``now`` (UTC, to the second).
mteb is installed by one of two distributions of the same modules (``mteb``, and ``mteb-core``
without torch); ``mteb_version`` reads whichever is installed, without importing mteb.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, requires, version

MTEB_DISTRIBUTIONS = ("mteb", "mteb-core")
"""The distributions that install the ``mteb`` import package: the full one (with torch,
transformers and sentence-transformers) and the same modules without them."""


def package_version(name: str) -> str | None:
    """An installed distribution's version (None when it is not installed)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def installed(name: str) -> str:
    """``name``'s installed version for messages ("not installed"); for ``mteb``, either of
    its distributions'."""
    found = mteb_version() if name == "mteb" else package_version(name)
    return found or "not installed"


def mteb_version() -> str | None:
    """The installed mteb's version, from either distribution (mteb is not imported)."""
    return next(filter(None, map(package_version, MTEB_DISTRIBUTIONS)), None)


def mteb_distribution_problem(versions: Mapping[str, str | None] | None = None) -> str | None:
    """Why the ``mteb`` import package cannot be trusted, or None.

    ``mteb`` and ``mteb-core`` install the same files. Both in one environment at one version
    hold identical bytes; at two versions the files on disk are a mixture of both.
    ``versions`` (distribution -> version, for tests) defaults to what is installed.
    """
    if versions is None:
        versions = {dist: package_version(dist) for dist in MTEB_DISTRIBUTIONS}
    found = {dist: v for dist, v in versions.items() if v}
    if len(set(found.values())) < 2:
        return None
    listing = " and ".join(f"{dist} {v}" for dist, v in found.items())
    return (
        f"{listing} are both installed and share the `mteb` import package, whose files are "
        "now a mixture of two versions. Install the same version of both "
        f"(pip install mteb-core=={found['mteb']}) or uninstall one."
    )


def extra_providing(module: str) -> str | None:
    """The extra of linq-eval whose packages include ``module`` (``models`` for torch), read
    from the installed distribution's metadata (pyproject's extras); None when none does."""
    top = module.split(".")[0].replace("-", "_").lower()
    for line in requires("linq-eval") or []:
        found = re.match(r"([A-Za-z0-9_.-]+)[^;]*;\s*extra\s*==\s*['\"](\w+)['\"]", line)
        if found and found.group(1).replace("-", "_").lower() == top:
            return found.group(2)
    return None


def now() -> str:
    """The time in UTC, to the second, ISO 8601 (``2026-12-07T17:06:00+00:00``)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


__all__ = [
    "MTEB_DISTRIBUTIONS",
    "extra_providing",
    "installed",
    "mteb_distribution_problem",
    "mteb_version",
    "now",
    "package_version",
]
