"""Third-party internals in one place: every internal of mteb, transformers, torch and
sentence-transformers that linq-eval (and its tests) use, one module per dependency, each call
behind a function of ours. An internal is a name the package does not document as public,
however it is spelled: an underscore name, a module below the package's public modules, a
name such a module does not export (``tests/test_thirdparty.py`` holds the rule as data:
``PUBLIC_MODULES``).

- ``mteb_private``: run-settings JSONL reading and merging, retrieval scoring, the reranking
  conversion, descriptive statistics of one split, the shape of a retrieval split, the cosine
  scoring function of a ``ModelMeta``;
- ``transformers_private``: whether a model routes attention through transformers'
  ``AttentionInterface``; reading and switching a config's attention implementation; a
  byte-fallback BPE read from a sentencepiece model;
- ``torch_private``: FlashAttention-2's varlen kernel as shipped inside PyTorch;
- ``sentence_transformers_private``: a ``Transformer`` module around a model already in memory.

Each module's ``_PRIVATE_NAMES`` lists what it reaches for and ``missing_names`` says, with the
installed version, which of them are gone (``tests/test_thirdparty.py``). Where a fallback
exists the wrapper takes it: packed attention falls back to padded batches, run settings to a
plain JSONL merge, a retrieval split to a plain dict. Nothing outside this package uses an
internal of these packages.
"""

from __future__ import annotations

import importlib
from typing import Any

from linq_eval.provenance import installed


def gone(package: str, names: list[str]) -> list[str]:
    """One message per private name that is gone, naming the installed version."""
    return [f"{package} {installed(package)} has no {name}" for name in names]


def lookup(module: str, path: str) -> Any | None:
    """The object at ``module.path``, or None when the module or an attribute is gone."""
    try:
        obj: Any = importlib.import_module(module)
    except ImportError:
        return None
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def require(package: str, module: str, path: str) -> Any:
    """The object at ``module.path``; an error naming the installed ``package`` when it is gone."""
    found = lookup(module, path)
    if found is None:
        raise RuntimeError(gone(package, [f"{module}.{path}"])[0])
    return found


__all__ = ["gone", "lookup", "require"]
