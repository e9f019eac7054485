"""Packed (varlen) attention: every input of a batch back to back in one row, no padding.

The linear layers, norms and MLPs (nearly all the FLOPs) see real tokens only, and attention
runs within each input. The model runs under a transformers attention implementation of our
own (``attention_function``), registered on first use and switched on only for the duration of
a packed forward pass (``linq_eval.model.forward``), so the same model object still runs
padded batches with its own implementation.

Which kernel an encoder uses is chosen once (``select_attention``): the first kernel of
``packed_kernels`` that this model, device and dtype support and that passes the self-check
(``_check_kernel`` here, the whole-model check in the encoder); else padded batches.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import AttentionInterface

from linq_eval.errors import ConfigError
from linq_eval.thirdparty.torch_private import flash_varlen, flash_varlen_available
from linq_eval.thirdparty.transformers_private import (
    can_switch_attention,
    supports_attention_backend,
)

_logger = logging.getLogger(__name__)

PACKED_ATTENTION = "linq_eval_packed"
"""The name our attention function is registered under in transformers."""

_PACKED_KERNELS = ("flash", "padded", "segments")
"""Kernels for attention within each input of a packed row:
- ``flash``: FlashAttention-2's varlen kernel as shipped inside PyTorch
  (``linq_eval.thirdparty.torch_private.flash_varlen``, cumulative lengths); CUDA,
  fp16/bf16, no padding; grouped K/V heads passed as they are;
- ``padded``: scatter the row into a right-padded [inputs, longest] block, causal SDPA with no
  mask (right padding never reaches a real token under a causal mask), gather back; any
  device, causal models only; pads attention alone, not the linear layers;
- ``segments``: one SDPA call per input; any device; exact, one call per input and layer."""

PADDED = "padded"
"""The attention mode without packing: rows padded to the longest, the model's own attention."""

ATTENTION_MODES = (PADDED, *(f"varlen-{kernel}" for kernel in _PACKED_KERNELS))
"""Every attention mode an encoder can run: padded, or packed rows with one of the kernels."""


@dataclass
class Packed:
    """Where the inputs of a packed row start and end, handed to ``attention_function``."""

    kernel: str
    cu_seqlens: torch.Tensor
    """int32 [inputs + 1] on the model's device: cumulative lengths, starting at 0."""
    bounds: list[int]
    """The same on the host."""
    max_len: int
    pad_index: torch.Tensor | None = None
    """``padded`` kernel: each token's flat position in the [inputs, max_len] block."""
    calls: int = 0
    """Attention calls served: 0 after a forward pass means the model ignored the packing."""


@dataclass
class AttentionProbe:
    """Stands in for an attention module in ``_check_kernel``."""

    is_causal: bool


def packed_kernels(device: torch.device, dtype: torch.dtype) -> list[str]:
    """Kernels to try, fastest first, for this device and dtype."""
    if device.type == "cuda":
        half = dtype in (torch.float16, torch.bfloat16)
        flash = ["flash"] if half and flash_varlen_available() else []
        return [*flash, "padded", "segments"]
    return ["segments", "padded"]


def _packing_unsupported(model: torch.nn.Module, max_length: int) -> str | None:
    """Why this model cannot run packed rows (None: it can, subject to the self-check)."""
    config = model.config
    if not supports_attention_backend(model):
        return f"{type(model).__name__} does not use transformers' attention interface"
    if not can_switch_attention(config):
        return "this transformers cannot switch a config's attention implementation"
    if getattr(config, "is_encoder_decoder", False):
        return "encoder-decoder model"
    window = getattr(config, "sliding_window", None)
    if window is not None and max_length > window:
        return f"max_length {max_length} exceeds the sliding window {window}"
    return None


def _is_causal(model: torch.nn.Module) -> bool:
    """Whether the model's attention modules are causal (decoders); True when none says."""
    for module in model.modules():
        flag = getattr(module, "is_causal", None)
        if isinstance(flag, bool):
            return flag
    return True


def register_packed_attention() -> None:
    """Register ``attention_function`` (as this module holds it now) with transformers."""
    AttentionInterface.register(PACKED_ATTENTION, attention_function)


def attention_function(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers attention function for packed rows: q [1, H, T, D], k/v [1, Hkv, T, D].

    Returns [1, T, H, D], as transformers' own SDPA function does.
    """
    packed: Packed | None = kwargs.get("linq_packed")
    if packed is None:
        raise RuntimeError("packed attention called without the packing (linq_packed)")
    packed.calls += 1
    causal = bool(getattr(module, "is_causal", True))
    if packed.kernel == "flash":
        q, k, v = (x[0].transpose(0, 1).contiguous() for x in (query, key, value))  # [T, h, D]
        out = flash_varlen(q, k, v, packed.cu_seqlens, packed.max_len, causal, scaling)
        return out.unsqueeze(0), None
    if packed.kernel == "padded":
        if not causal:
            raise RuntimeError("the padded kernel needs causal attention")
        return _padded_block(query, key, value, packed, scaling), None
    if packed.kernel == "segments":
        return _segments(query, key, value, packed, causal, scaling), None
    raise ConfigError(
        f"Unknown packed attention kernel {packed.kernel!r}; valid: {_PACKED_KERNELS}"
    )


def _padded_block(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    packed: Packed,
    scaling: float | None,
) -> torch.Tensor:
    heads, head_dim = query.shape[1], query.shape[3]
    rows, width, index = len(packed.bounds) - 1, packed.max_len, packed.pad_index

    def block(x: torch.Tensor) -> torch.Tensor:
        flat = x[0].transpose(0, 1)  # [T, h, D]
        buf = flat.new_zeros(rows * width, flat.shape[1], head_dim)
        buf[index] = flat
        return buf.view(rows, width, flat.shape[1], head_dim).transpose(1, 2)

    out = torch.nn.functional.scaled_dot_product_attention(
        block(query),
        block(key),
        block(value),
        is_causal=True,
        scale=scaling,
        enable_gqa=key.shape[1] != heads,
    )
    return out.transpose(1, 2).reshape(rows * width, heads, head_dim)[index].unsqueeze(0)


def _segments(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    packed: Packed,
    causal: bool,
    scaling: float | None,
) -> torch.Tensor:
    total, heads, head_dim = query.shape[2], query.shape[1], query.shape[3]
    out = query.new_empty(1, total, heads, head_dim)
    gqa = key.shape[1] != heads
    for start, end in itertools.pairwise(packed.bounds):
        part = torch.nn.functional.scaled_dot_product_attention(
            query[:, :, start:end],
            key[:, :, start:end],
            value[:, :, start:end],
            is_causal=causal,
            scale=scaling,
            enable_gqa=gqa,
        )
        out[:, start:end] = part.transpose(1, 2)
    return out


def attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    packed: Packed,
    causal: bool,
    scale: float,
) -> torch.Tensor:
    """Per-input attention written out (float32): [T, H, D], for ``_check_kernel``."""
    groups = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
    parts = []
    for start, end in itertools.pairwise(packed.bounds):
        scores = q[0, :, start:end] @ k[0, :, start:end].transpose(-1, -2) * scale
        if causal:
            n = end - start
            future = torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1)
            scores = scores.masked_fill(future, float("-inf"))
        parts.append((scores.softmax(-1) @ v[0, :, start:end]).transpose(0, 1))
    return torch.cat(parts)


@torch.inference_mode()
def _check_kernel(
    kernel: str, model: torch.nn.Module, device: torch.device, dtype: torch.dtype
) -> None:
    """Raise unless ``kernel`` gives per-input SDPA's result on random q/k/v shaped like the
    model's attention (catches a wrong mask or head grouping)."""
    config = model.config
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    lens = [7, 1, 13, 4]
    bounds = np.cumsum([0, *lens])
    gen = torch.Generator().manual_seed(0)
    q, k, v = (
        torch.randn(1, h, bounds[-1], head_dim, generator=gen).to(device, dtype)
        for h in (heads, kv_heads, kv_heads)
    )
    positions = np.concatenate([np.arange(n) for n in lens])
    pad_index = torch.from_numpy(np.repeat(np.arange(len(lens)) * max(lens), lens) + positions)
    packed = Packed(
        kernel,
        torch.tensor(bounds, dtype=torch.int32, device=device),
        bounds.tolist(),
        max(lens),
        pad_index.to(device),
    )
    module = AttentionProbe(_is_causal(model))
    got = attention_function(module, q, k, v, None, scaling=head_dim**-0.5, linq_packed=packed)
    want = attention_reference(
        q.float(), k.float(), v.float(), packed, module.is_causal, head_dim**-0.5
    )
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    err = (got[0].float() - want).abs().max().item()
    if not err <= tol:
        raise RuntimeError(f"attention kernel differs from SDPA by {err:.2e} (> {tol})")


def select_attention(
    model: torch.nn.Module,
    device: torch.device,
    dtype: torch.dtype,
    max_length: int,
    check_model: Callable[[str], None],
) -> tuple[str, str | None]:
    """``(mode, note)``: the first packed kernel that passes ``_check_kernel`` and
    ``check_model`` (the whole model packed against padded), else ``padded``; the note says
    why faster kernels were not used."""
    reason = _packing_unsupported(model, max_length)
    if reason is not None:
        return PADDED, reason
    register_packed_attention()
    failures = []
    for kernel in packed_kernels(device, dtype):
        try:
            _check_kernel(kernel, model, device, dtype)
            check_model(kernel)
        except Exception as exc:  # noqa: BLE001 - any failure rules this kernel out
            failures.append(f"{kernel}: {type(exc).__name__}: {str(exc)[:200]}")
            _logger.info("packed attention %r not used: %s", kernel, exc)
            continue
        return f"varlen-{kernel}", "; ".join(failures) or None
    return PADDED, "; ".join(failures)


__all__ = [
    "ATTENTION_MODES",
    "PACKED_ATTENTION",
    "PADDED",
    "AttentionProbe",
    "Packed",
    "attention_function",
    "attention_reference",
    "packed_kernels",
    "register_packed_attention",
    "select_attention",
]
