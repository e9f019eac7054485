"""How fast the encoder computes, as declared options: ``SpeedOptions``.

None of these options changes an embedding beyond floating-point rounding (each fast path is
tested against the padded reference); all of them are recorded in ``settings()["speed"]``.
The encoder takes them at construction (``DecoderEncoder(..., speed=...)``); the throughput
benchmark varies them through the same argument.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from linq_eval.defaults import DEFAULT_TOKEN_BUDGET
from linq_eval.errors import ConfigError
from linq_eval.model.packed_attention import ATTENTION_MODES

_logger = logging.getLogger(__name__)

AUTO = "auto"
"""Attention mode chosen by the encoder: the fastest packed kernel that passes its self-check."""


@dataclass(frozen=True)
class SpeedOptions:
    """The encoder's speed techniques, each one a declared switch."""

    attention: str = AUTO
    """``auto``, ``padded`` (rows padded to the longest, the model's own attention) or
    ``varlen-<kernel>`` (every input of a batch packed into one row; see
    ``linq_eval.model.packed_attention._PACKED_KERNELS``)."""
    token_budget: int | None = None
    """Tokens per forward pass (rows x longest row when padded, the sum when packed);
    None: the device's default (``DEFAULT_TOKEN_BUDGET``)."""
    pinned_memory: bool = True
    """CUDA: host-to-device copies through pinned memory, asynchronously (ignored on CPU)."""

    def __post_init__(self) -> None:
        problems = []
        if self.attention not in (AUTO, *ATTENTION_MODES):
            problems.append(
                f"Unknown attention mode {self.attention!r}; valid: "
                + ", ".join((AUTO, *ATTENTION_MODES))
            )
        if self.token_budget is not None and self.token_budget < 1:
            problems.append(f"token_budget={self.token_budget} must be at least 1")
        if problems:
            raise ConfigError("; ".join(problems))

    def on(self, device: torch.device | str, max_length: int = 0) -> SpeedOptions:
        """These options as they apply on ``device``: the token budget filled in with the
        device's default (``max_length`` when longer: one longest input fits), pinned memory
        only on CUDA."""
        kind = torch.device(device).type
        default = max(DEFAULT_TOKEN_BUDGET.get(kind, DEFAULT_TOKEN_BUDGET["cpu"]), max_length)
        return dataclasses.replace(
            self,
            token_budget=self.token_budget or default,
            pinned_memory=self.pinned_memory and kind == "cuda",
        )


def budget_to_fit(token_budget: int | None, device: torch.device | str) -> bool:
    """Whether an encoder built with ``token_budget`` on ``device`` fits its budget to the
    GPU's memory (``fit_token_budget``): on CUDA when no budget is given. A given budget, or
    any other device, keeps the budget as given (or the device's default)."""
    return token_budget is None and torch.device(device).type == "cuda"


def fit_token_budget(
    probe: Callable[[int], None],
    device: torch.device,
    length: int,
    *,
    limit: int = DEFAULT_TOKEN_BUDGET["cuda"],
) -> int:
    """CUDA: the largest token budget that fits in memory, up to ``limit``.

    ``probe(tokens)`` runs one forward pass of ``tokens // length`` inputs of ``length``
    tokens. Measures the memory such a pass takes per token, sizes the budget to 85% of the
    free memory, then runs one batch of that size to confirm it (halving on
    out-of-memory). Matrix products of 64k rows already run at the GPU's rate; larger batches
    only make the last, partial batch of a task a larger share of its time.
    """
    _free_cuda_memory()
    start = max(length, min(limit, 8192) // length * length)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    probe(start)
    per_token = max(1.0, (torch.cuda.max_memory_allocated(device) - base) / start)
    _free_cuda_memory()
    free, _ = torch.cuda.mem_get_info(device)
    budget = int(min(limit, 0.85 * free / per_token)) // length * length
    budget = max(budget, length)
    while True:
        try:
            probe(budget)
            break
        except torch.OutOfMemoryError:
            _free_cuda_memory()
            if budget <= length:
                raise
            budget = max(length, budget // 2 // length * length)
    _logger.info("token budget %d (%.0f KiB per token)", budget, per_token / 1024)
    return budget


def _free_cuda_memory() -> None:
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()


__all__ = ["AUTO", "SpeedOptions", "budget_to_fit", "fit_token_budget"]
