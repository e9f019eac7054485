"""Where the project's own data lives: one home for every path the package reads.

The repository keeps ``task_instructions/`` and ``results/baselines/`` at its top level;
these functions are the only places that know where they are.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
"""The installed ``linq_eval`` package."""
REPO_ROOT = PACKAGE_DIR.parent
"""The source checkout (when the package runs from one)."""


def instructions_root() -> Path:
    """The shipped instruction sets (``task_instructions/``)."""
    return REPO_ROOT / "task_instructions"


def baselines_root() -> Path:
    """The shipped baseline sets (``results/baselines/``)."""
    return REPO_ROOT / "results" / "baselines"


def shared_data_candidates(name: str) -> list[Path]:
    """Where a shared data folder may sit: ``../shared/data/NAME`` beside the checkout, or
    ``shared/data/NAME`` inside it."""
    return [REPO_ROOT.parent / "shared" / "data" / name, REPO_ROOT / "shared" / "data" / name]
