"""Third-party internals in one place: every private name of mteb, transformers and torch that
linq-eval (and its tests) use, one module per dependency, each call behind a function of ours.

- ``mteb_private``: run-settings JSONL reading and merging, retrieval scoring, the reranking
  conversion, descriptive statistics of one split;
- ``transformers_private``: whether a model routes attention through transformers'
  ``AttentionInterface``; reading and switching a config's attention implementation;
- ``torch_private``: FlashAttention-2's varlen kernel as shipped inside PyTorch.

Each module's ``PRIVATE_NAMES`` lists what it reaches for and ``missing_names`` says, with the
installed version, which of them are gone (``tests/test_thirdparty.py``). Where a fallback
exists the wrapper takes it: packed attention falls back to padded batches, run settings to a
plain JSONL merge. Nothing outside this package names a private attribute of these packages.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version(name: str) -> str:
    """The installed version of ``name`` ("not installed" when it is not)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def gone(package: str, names: list[str]) -> list[str]:
    """One message per private name that is gone, naming the installed version."""
    return [f"{package} {package_version(package)} has no {name}" for name in names]


__all__ = ["gone", "package_version"]
