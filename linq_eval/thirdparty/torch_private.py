"""torch's private names that linq-eval uses, each behind one function.

- ``torch.ops.aten._flash_attention_forward``: FlashAttention-2's varlen kernel as shipped
  inside PyTorch (cumulative lengths, no padding). Without it the ``flash`` kernel is not
  offered and packed attention uses the next kernel (``padded``, ``segments``).
"""

from __future__ import annotations

import torch

from linq_eval.thirdparty import gone

_FLASH_VARLEN = "_flash_attention_forward"
_PRIVATE_NAMES = (f"torch.ops.aten.{_FLASH_VARLEN}",)
"""Every private name used here."""


def flash_varlen_available() -> bool:
    """Whether this torch ships the varlen FlashAttention operator."""
    try:
        getattr(torch.ops.aten, _FLASH_VARLEN)
    except (AttributeError, RuntimeError):
        return False
    return True


def missing_names() -> list[str]:
    """The private names the installed torch lacks, with its version."""
    return gone("torch", [] if flash_varlen_available() else list(_PRIVATE_NAMES))


def flash_varlen(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens: torch.Tensor,
    max_len: int,
    causal: bool,
    scale: float | None,
) -> torch.Tensor:
    """Attention within each input of a packed row: q/k/v [T, heads, D], ``cu_seqlens`` int32
    [inputs + 1] on the device; returns [T, heads, D]."""
    op = getattr(torch.ops.aten, _FLASH_VARLEN)
    return op(q, k, v, cu_seqlens, cu_seqlens, max_len, max_len, 0.0, causal, False, scale=scale)[0]


__all__ = ["flash_varlen", "flash_varlen_available", "missing_names"]
