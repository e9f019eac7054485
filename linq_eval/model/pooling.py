"""Pooling: one vector per input from a model's hidden states (last token or mean)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from linq_eval.model.packed_attention import Packed


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Last-token or mean pooling of padded rows; correct for left and right padding alike
    (the position of the last real token is read from the mask, not assumed)."""
    if pooling == "last":
        positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        last = (positions * mask).max(dim=1).values
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def pool_packed(hidden: torch.Tensor, packed: Packed, pooling: str) -> torch.Tensor:
    """Pool a packed row's hidden states [T, dim] into [inputs, dim]."""
    ends = packed.cu_seqlens[1:].long()
    if pooling == "last":
        return hidden[ends - 1]
    lengths = ends - packed.cu_seqlens[:-1].long()
    owner = torch.repeat_interleave(torch.arange(len(lengths), device=hidden.device), lengths)
    sums = torch.zeros(len(lengths), hidden.shape[1], dtype=torch.float32, device=hidden.device)
    sums.index_add_(0, owner, hidden.float())
    return sums / lengths.clamp(min=1).unsqueeze(1).to(sums.dtype)


def normalised_tensor(x: Any) -> torch.Tensor:
    """Rows of ``x`` (array or tensor, 1-d or 2-d) as L2-normalised float32 tensor rows."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float()
    return torch.nn.functional.normalize(torch.atleast_2d(t), dim=-1)


__all__ = ["normalised_tensor", "pool", "pool_packed"]
