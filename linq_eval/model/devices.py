"""Where and in what precision a model runs: device, dtype and attention implementation."""

from __future__ import annotations

import importlib.util

import torch

from linq_eval.errors import ConfigError
from linq_eval.profiles import DTYPE_ALIASES, DTYPE_NAMES

_DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}
"""The torch dtype of each precision name."""


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``auto``: CUDA when available, else CPU."""
    if isinstance(device, torch.device):
        return device
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"Unknown device {device!r} (e.g. cpu, cuda, cuda:1)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} asked for, but CUDA is not available here")
    return dev


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """``auto``: bf16 on CUDA, fp32 on CPU."""
    if isinstance(dtype, torch.dtype):
        return dtype
    name = DTYPE_ALIASES.get(dtype, dtype)
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return _DTYPES[name]
    except KeyError:
        raise ConfigError(f"Unknown dtype {dtype!r}; valid: auto, {', '.join(_DTYPES)}") from None


def best_attn_implementation(device: torch.device) -> str:
    """flash-attention 2 when installed on CUDA, else PyTorch SDPA."""
    if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


__all__ = ["best_attn_implementation", "resolve_device", "resolve_dtype"]
