"""sentence-transformers' private names that linq-eval uses, each behind one function.

- ``Transformer._load_model``: the method a ``Transformer`` module loads its model with,
  replaced while ``transformer_around`` builds one so that it takes a model already in memory
  (there is no public way; the benchmark's sentence-transformers way needs it). No fallback.

The module classes themselves are public: ``sentence_transformers.sentence_transformer.modules``
since version 6, ``sentence_transformers.models`` before (``module_classes``).
"""

from __future__ import annotations

from typing import Any
from unittest import mock

from linq_eval.thirdparty import gone

_LOAD_MODEL = "_load_model"
_PRIVATE_NAMES = (f"Transformer.{_LOAD_MODEL}",)
"""Every private name used here."""


def module_classes() -> tuple[Any, Any, Any]:
    """sentence-transformers' ``Normalize``, ``Pooling`` and ``Transformer`` module classes."""
    try:
        from sentence_transformers.sentence_transformer.modules import (
            Normalize,
            Pooling,
            Transformer,
        )
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Normalize, Pooling, Transformer
    return Normalize, Pooling, Transformer


def missing_names() -> list[str]:
    """The private names the installed sentence-transformers lacks, with its version."""
    transformer = module_classes()[2]
    return gone(
        "sentence-transformers", [] if hasattr(transformer, _LOAD_MODEL) else list(_PRIVATE_NAMES)
    )


def transformer_around(model: Any, folder: str, max_seq_length: int) -> Any:
    """A ``Transformer`` module whose model is ``model`` (in memory, not loaded again), with
    the config and tokenizer saved in ``folder``."""
    transformer = module_classes()[2]
    if not hasattr(transformer, _LOAD_MODEL):
        raise RuntimeError(gone("sentence-transformers", list(_PRIVATE_NAMES))[0])
    with mock.patch.object(transformer, _LOAD_MODEL, lambda self, *a, **k: model):
        return transformer(folder, max_seq_length=max_seq_length)


__all__ = ["missing_names", "module_classes", "transformer_around"]
