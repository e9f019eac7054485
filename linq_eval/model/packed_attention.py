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

    @classmethod
    def of(
        cls, kernel: str, lens: np.ndarray, to_device: Callable[[np.ndarray], torch.Tensor]
    ) -> tuple[Packed, np.ndarray]:
        """The packing of inputs of lengths ``lens``, and each token's position in its input."""
        bounds = np.concatenate([[0], np.cumsum(lens)])
        positions = np.arange(bounds[-1]) - np.repeat(bounds[:-1], lens)
        max_len = int(lens.max())
        pad_index = np.repeat(np.arange(len(lens)) * max_len, lens) + positions
        cu_seqlens = to_device(bounds.astype(np.int32))
        pad = to_device(pad_index) if kernel == "padded" else None
        return cls(kernel, cu_seqlens, bounds.tolist(), max_len, pad), positions


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
    heads, head_dim, gqa = query.shape[1], query.shape[3], key.shape[1] != query.shape[1]
    sdpa = torch.nn.functional.scaled_dot_product_attention
    if packed.kernel == "padded":  # scattered into [inputs, max_len], SDPA, gathered back
        if not causal:
            raise RuntimeError("the padded kernel needs causal attention")
        rows, width, index = len(packed.bounds) - 1, packed.max_len, packed.pad_index

        def block(x: torch.Tensor) -> torch.Tensor:
            flat = x[0].transpose(0, 1)  # [T, h, D]
            buf = flat.new_zeros(rows * width, flat.shape[1], head_dim)
            buf[index] = flat
            return buf.view(rows, width, flat.shape[1], head_dim).transpose(1, 2)

        out = sdpa(
            block(query), block(key), block(value), is_causal=True, scale=scaling, enable_gqa=gqa
        )
        return out.transpose(1, 2).reshape(rows * width, heads, head_dim)[index].unsqueeze(0), None
    if packed.kernel == "segments":  # one SDPA call per input
        out = query.new_empty(1, query.shape[2], heads, head_dim)
        for start, end in itertools.pairwise(packed.bounds):
            q, k, v = (x[:, :, start:end] for x in (query, key, value))
            part = sdpa(q, k, v, is_causal=causal, scale=scaling, enable_gqa=gqa)
            out[:, start:end] = part.transpose(1, 2)
        return out, None
    raise ConfigError(
        f"Unknown packed attention kernel {packed.kernel!r}; valid: {_PACKED_KERNELS}"
    )


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
    lens = np.array([7, 1, 13, 4])
    packed, _ = Packed.of(kernel, lens, lambda array: torch.from_numpy(array).to(device))
    gen = torch.Generator().manual_seed(0)
    q, k, v = (
        torch.randn(1, h, int(lens.sum()), head_dim, generator=gen).to(device, dtype)
        for h in (heads, kv_heads, kv_heads)
    )
    # Causal (decoders) unless the model's attention modules say otherwise.
    flags = (getattr(m, "is_causal", None) for m in model.modules())
    module = AttentionProbe(next((flag for flag in flags if isinstance(flag, bool)), True))
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
    window = getattr(model.config, "sliding_window", None)
    if not supports_attention_backend(model):
        return PADDED, f"{type(model).__name__} does not use transformers' attention interface"
    if not can_switch_attention(model.config):
        return PADDED, "this transformers cannot switch a config's attention implementation"
    if getattr(model.config, "is_encoder_decoder", False):
        return PADDED, "encoder-decoder model"
    if window is not None and max_length > window:
        return PADDED, f"max_length {max_length} exceeds the sliding window {window}"
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
