"""The lock (`scripts/constraints.txt`) covers what linq-eval and its tests need, agrees with
pyproject.toml's ranges, and is what a locked set-up installed.

`scripts/setup.sh` leaves `linq-eval-install.txt` in the environment it installed into: `locked`
and the lock it used, or `unlocked` (`--unlocked`, as `scripts/refresh_lock.sh` installs). A locked
environment must hold exactly the lock's versions; an unlocked one only versions within the ranges.
"""

from __future__ import annotations

import ast
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCK = REPO_ROOT / "scripts" / "constraints.txt"
INSTALL_RECORD = Path(sys.prefix) / "linq-eval-install.txt"


def _pins(text: str) -> dict[str, Version]:
    pins = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{LOCK.name}: {line!r} is not an exact pin (name==version)"
            pins[canonicalize_name(name)] = Version(version)
    return pins


LOCKED = _pins(LOCK.read_text())


def _declared() -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    return [Requirement(r) for r in project["dependencies"] + extras]


def _imported_top_modules() -> set[str]:
    """Top-level modules that linq_eval/ and tests/ import."""
    names = set()
    for folder in ("linq_eval", "tests"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names.add(node.module.split(".")[0])
    return names


def test_every_declared_dependency_is_locked_within_its_range() -> None:
    problems = []
    for req in _declared():
        pin = LOCKED.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{req.name}: declared in pyproject.toml, missing from the lock")
        elif not req.specifier.contains(pin, prereleases=True):
            problems.append(f"{req.name}: locked {pin} is outside pyproject.toml's {req}")
    assert not problems, "\n".join(problems)


def test_every_imported_third_party_package_is_locked() -> None:
    distributions = metadata.packages_distributions()
    ours = {"linq_eval", "cli_helpers", "conftest", "data_helpers", "result_files"}
    local_test_modules = {p.stem for p in (REPO_ROOT / "tests").glob("*.py")}
    missing = []
    for module in sorted(_imported_top_modules() - ours - local_test_modules):
        if module in sys.stdlib_module_names or module == "__future__":
            continue
        dists = distributions.get(module)
        if not dists:
            missing.append(f"{module}: imported, but no installed distribution provides it")
        elif not any(canonicalize_name(d) in LOCKED for d in dists):
            missing.append(f"{module} (from {', '.join(dists)}): imported, not in the lock")
    assert not missing, "\n".join(missing)


def test_installed_versions_are_the_lock_or_within_the_ranges() -> None:
    if not INSTALL_RECORD.is_file():
        pytest.skip(
            f"{INSTALL_RECORD} is absent: this environment was not made by scripts/setup.sh"
        )
    mode, _, lock_used = INSTALL_RECORD.read_text().partition("\n")
    wrong = []
    if mode == "locked":
        assert _pins(lock_used) == LOCKED, (
            "the environment was installed from an older lock: run `bash scripts/setup.sh` again"
        )
        for name, pin in LOCKED.items():
            try:
                installed = Version(metadata.version(name))
            except metadata.PackageNotFoundError:
                wrong.append(f"{name}: locked {pin}, not installed")
                continue
            if Version(installed.public) != pin:
                wrong.append(f"{name}: locked {pin}, installed {installed}")
    else:
        assert mode == "unlocked", f"{INSTALL_RECORD}: unknown install mode {mode!r}"
        for req in _declared():
            installed = Version(metadata.version(req.name))
            if not req.specifier.contains(installed, prereleases=True):
                wrong.append(f"{req.name}: installed {installed} is outside {req}")
    assert not wrong, "\n".join(wrong)
