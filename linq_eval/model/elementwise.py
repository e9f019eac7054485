"""Fused elementwise work between a decoder layer's matrix products.

A decoder layer runs ~15 elementwise kernels per token (two RMSNorms of 6 kernels each in
fp32, SiLU, a multiply, rotary, residual adds). On a GPU they are memory-bound and can cost
~20% of a 7B forward pass; fusing the norms and the MLP's SiLU-and-multiply removes most of
that traffic. Modes: ``eager`` (the model's own code), ``fused`` (RMSNorm as one
``torch.rms_norm`` kernel), ``compiled`` (RMSNorm and SiLU-and-multiply through
``torch.compile``). The model is patched only for the duration of a forward pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

ELEMENTWISE_MODES = ("eager", "fused", "compiled")

_RMS_NORMS = ("MistralRMSNorm", "LlamaRMSNorm", "Qwen2RMSNorm", "Qwen3RMSNorm")


def _rms_norm_reference(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """transformers' Llama/Mistral RMSNorm as a pure function (fp32 inside)."""
    dtype = x.dtype
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(dtype)


def _silu_mul(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.silu(gate) * up


_COMPILED: dict[str, Any] = {}


def _compiled(name: str) -> Any:
    if name not in _COMPILED:
        fn = {"rms_norm": _rms_norm_reference, "silu_mul": _silu_mul}[name]
        _COMPILED[name] = torch.compile(fn, dynamic=True)
    return _COMPILED[name]


def elementwise_context(
    model: torch.nn.Module, mode: str
) -> contextlib.AbstractContextManager[None]:
    """The block within which ``model`` runs its elementwise work in ``mode``."""
    if mode == "eager":
        return contextlib.nullcontext()
    return _patched_elementwise(model, mode)


@contextlib.contextmanager
def _patched_elementwise(model: torch.nn.Module, mode: str) -> Iterator[None]:
    """Give the model's RMSNorms (and, when compiled, MLPs) fused forwards for a while."""
    patched: list[torch.nn.Module] = []
    try:
        for module in model.modules():
            name = type(module).__name__
            if name in _RMS_NORMS and hasattr(module, "variance_epsilon"):
                if mode == "fused":
                    module.forward = _FusedNorm(module)
                else:
                    module.forward = _CompiledNorm(module)
                patched.append(module)
            elif (
                mode == "compiled"
                and all(hasattr(module, a) for a in ("gate_proj", "up_proj", "down_proj"))
                and isinstance(getattr(module, "act_fn", None), torch.nn.SiLU)
            ):
                module.forward = _CompiledMLP(module)
                patched.append(module)
        yield
    finally:
        for module in patched:
            del module.forward


class _FusedNorm:
    def __init__(self, module: torch.nn.Module) -> None:
        self.m = module

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.rms_norm(x, (x.shape[-1],), self.m.weight, self.m.variance_epsilon)


class _CompiledNorm(_FusedNorm):
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _compiled("rms_norm")(x, self.m.weight, self.m.variance_epsilon)


class _CompiledMLP(_FusedNorm):
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        m = self.m
        return m.down_proj(_compiled("silu_mul")(m.gate_proj(x), m.up_proj(x)))


__all__ = [
    "ELEMENTWISE_MODES",
    "elementwise_context",
]
