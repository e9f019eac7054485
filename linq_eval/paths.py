"""Where the project's own data lives: one home for every path the package reads, the
environment variables that move them, and the layout of linq-eval's folder in an output.

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
_REPO_ROOT = PACKAGE_DIR.parent
"""The source checkout (when the package runs from one)."""
_INSTALLED_DATA = PACKAGE_DIR / "_data"
"""Where a wheel puts the shipped data (absent in a checkout)."""


_INSTRUCTIONS_DIR_ENV = "LINQ_EVAL_INSTRUCTIONS_DIR"
"""Environment variable that points the instruction-set registry at another folder."""
_BASELINES_ENV = "LINQ_EVAL_BASELINES"
"""Environment variable that points the baseline sets at another folder."""
SCIFACT_ENV = "LINQ_EVAL_SCIFACT"
"""Environment variable that names the SciFact folder ``bench`` reads its length mix from."""
_CACHE_ENV = "LINQ_EVAL_CACHE"
"""Environment variable that moves linq-eval's folder in the user's cache."""

MODEL_META = "model_meta.json"
"""mteb's metadata file of a model and revision, beside its result files."""
RUN_SETTINGS = "run_settings.jsonl"
"""mteb's record of the encode settings of each task, split and subset, beside them."""

_OUTPUT_STATE_DIR = ".linq_eval"
"""linq-eval's own folder inside an output folder (beside mteb's results tree)."""
CACHE_SUBDIR = f"{_OUTPUT_STATE_DIR}/embeddings"
"""The embedding cache's default place under an output folder."""
SCRATCH = f"{_OUTPUT_STATE_DIR}/scratch"
"""Where mteb writes result files before they are renamed into place (under an output)."""
MTEB_CACHE_SUBDIR = f"{_OUTPUT_STATE_DIR}/mteb"
"""mteb's own result cache folder, under an output."""
LOCKS_SUBDIR = f"{_OUTPUT_STATE_DIR}/locks"
"""One lock per task being evaluated, under an output."""
EXPLAIN_SUBDIR = f"{_OUTPUT_STATE_DIR}/explain"
"""Under an output: ``linq-eval explain``'s candidates, one results tree each (hidden from a
``table`` of the output: they are not the run)."""
EXPLAIN_VERDICTS = f"{_OUTPUT_STATE_DIR}/explain.json"
"""Under an output: the verdicts of its last ``linq-eval explain`` (the HTML report shows
them)."""


def _shipped(installed_name: str, checkout_path: Path) -> Path:
    installed = _INSTALLED_DATA / installed_name
    return installed if installed.is_dir() else checkout_path


def instructions_root() -> Path:
    """The shipped instruction sets (``task_instructions/``)."""
    return _shipped("task_instructions", _REPO_ROOT / "task_instructions")


def baselines_root() -> Path:
    """The shipped baseline sets (``results/baselines/``)."""
    return _shipped("baselines", _REPO_ROOT / "results" / "baselines")


def instruction_sets_dir() -> Path:
    """The folder of named instruction sets: ``$LINQ_EVAL_INSTRUCTIONS_DIR`` or the shipped one
    (read at each call, so a change of the environment takes effect)."""
    return Path(os.environ.get(_INSTRUCTIONS_DIR_ENV) or instructions_root())


def baseline_sets_dir() -> Path:
    """The folder of baseline sets: ``$LINQ_EVAL_BASELINES`` or the shipped one."""
    env = os.environ.get(_BASELINES_ENV)
    return Path(env) if env else baselines_root()


def scifact_override() -> Path | None:
    """The SciFact folder ``$LINQ_EVAL_SCIFACT`` names (None when unset)."""
    env = os.environ.get(SCIFACT_ENV)
    return Path(env) if env else None


def shared_data_candidates(name: str) -> list[Path]:
    """Where a shared data folder may sit: ``../shared/data/NAME`` beside the checkout, or
    ``shared/data/NAME`` inside it."""
    return [_REPO_ROOT.parent / "shared" / "data" / name, _REPO_ROOT / "shared" / "data" / name]


def card_example_file() -> Path:
    """The model card's usage example as data (``linq-eval check``), inside the package."""
    return PACKAGE_DIR / "model" / "card_example.json"


def user_cache_dir() -> Path:
    """linq-eval's folder in the user's cache (``LINQ_EVAL_CACHE`` overrides it), where
    ``linq-eval check`` records its outcomes for later runs to find."""
    env = os.environ.get(_CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "linq-eval"


__all__ = [
    "CACHE_SUBDIR",
    "EXPLAIN_SUBDIR",
    "EXPLAIN_VERDICTS",
    "LOCKS_SUBDIR",
    "MODEL_META",
    "MTEB_CACHE_SUBDIR",
    "PACKAGE_DIR",
    "RUN_SETTINGS",
    "SCIFACT_ENV",
    "SCRATCH",
    "baseline_sets_dir",
    "baselines_root",
    "card_example_file",
    "instruction_sets_dir",
    "instructions_root",
    "scifact_override",
    "shared_data_candidates",
    "user_cache_dir",
]
