"""Where the project's own data lives: one home for every path the package reads.

The repository keeps ``task_instructions/`` and ``results/baselines/`` at its top level. An
installed wheel carries the same folders inside the package, as ``linq_eval/_data/`` (the
mapping is in ``pyproject.toml``). These functions are the only places that know either:
the installed copy when there is one, else the checkout's (a source tree or an editable
install).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
"""The installed ``linq_eval`` package."""
REPO_ROOT = PACKAGE_DIR.parent
"""The source checkout (when the package runs from one)."""
INSTALLED_DATA = PACKAGE_DIR / "_data"
"""Where a wheel puts the shipped data (absent in a checkout)."""


def _shipped(installed_name: str, checkout_path: Path) -> Path:
    installed = INSTALLED_DATA / installed_name
    return installed if installed.is_dir() else checkout_path


def instructions_root() -> Path:
    """The shipped instruction sets (``task_instructions/``)."""
    return _shipped("task_instructions", REPO_ROOT / "task_instructions")


def baselines_root() -> Path:
    """The shipped baseline sets (``results/baselines/``)."""
    return _shipped("baselines", REPO_ROOT / "results" / "baselines")


def shared_data_candidates(name: str) -> list[Path]:
    """Where a shared data folder may sit: ``../shared/data/NAME`` beside the checkout, or
    ``shared/data/NAME`` inside it."""
    return [REPO_ROOT.parent / "shared" / "data" / name, REPO_ROOT / "shared" / "data" / name]


def card_example_file() -> Path:
    """The model card's usage example as data (``linq-eval check``), inside the package."""
    return PACKAGE_DIR / "model" / "card_example.json"


def user_cache_dir() -> Path:
    """linq-eval's folder in the user's cache (``LINQ_EVAL_CACHE`` overrides it), where
    ``linq-eval check`` records its outcomes for later runs to find."""
    env = os.environ.get("LINQ_EVAL_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "linq-eval"
