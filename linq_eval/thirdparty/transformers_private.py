"""transformers' private names that linq-eval uses, each behind one function.

- ``PreTrainedModel._supports_attention_backend``: the class attribute marking models that
  route attention through ``AttentionInterface`` (no public equivalent); without it a model
  is treated as not routing so, and packed attention falls back to padded batches;
- ``PretrainedConfig._attn_implementation``: the attention implementation a loaded model runs
  (read, and switched for the duration of a packed forward pass: the public
  ``set_attn_implementation`` also validates and registers mask functions, which a packed row
  must not get). Without it, packing is unavailable (padded batches).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from linq_eval.thirdparty import gone

_SUPPORTS_BACKEND = "_supports_attention_backend"
_ATTN_IMPLEMENTATION = "_attn_implementation"
PRIVATE_NAMES = (f"PreTrainedModel.{_SUPPORTS_BACKEND}", f"PretrainedConfig.{_ATTN_IMPLEMENTATION}")
"""Every private name used here."""


def missing_names() -> list[str]:
    """The private names the installed transformers lacks, with its version."""
    from transformers import PretrainedConfig, PreTrainedModel

    config = PretrainedConfig()
    found = (hasattr(PreTrainedModel, _SUPPORTS_BACKEND), hasattr(config, _ATTN_IMPLEMENTATION))
    return gone("transformers", [n for n, ok in zip(PRIVATE_NAMES, found, strict=True) if not ok])


def supports_attention_backend(model: Any) -> bool:
    """Whether the model routes attention through transformers' ``AttentionInterface``."""
    return bool(getattr(model, _SUPPORTS_BACKEND, False))


def attn_implementation(config: Any) -> str | None:
    """The attention implementation a model with this config runs (None when unknown)."""
    value = getattr(config, _ATTN_IMPLEMENTATION, None)
    return value if isinstance(value, str) else None


def can_switch_attention(config: Any) -> bool:
    """Whether ``attention_switched`` can switch this config's implementation."""
    return hasattr(config, _ATTN_IMPLEMENTATION)


@contextlib.contextmanager
def attention_switched(config: Any, name: str) -> Iterator[None]:
    """Run the model of ``config`` under attention implementation ``name`` within the block."""
    previous = getattr(config, _ATTN_IMPLEMENTATION)
    setattr(config, _ATTN_IMPLEMENTATION, name)
    try:
        yield
    finally:
        setattr(config, _ATTN_IMPLEMENTATION, previous)


__all__ = [
    "PRIVATE_NAMES",
    "attention_switched",
    "attn_implementation",
    "can_switch_attention",
    "missing_names",
    "supports_attention_backend",
]
