"""What the benchmark measures with: FLOPs, the GPU's matrix product peak, computed tokens,
peak memory, and the machine and versions it ran on.

FLOPs per text of ``l`` tokens (useful work: real tokens only, padding excluded)::

    2 * P * l  +  2 * n_layers * (n_heads * head_dim) * l * (l + 1)

with ``P`` the weights of the model's matrix products (every ``nn.Linear``; the embedding
lookup is no product). The second term is causal attention: the query at position i meets i
keys, 2 FLOPs per multiply-add for QK^T and again for AV. Mistral-7B: P = 6.98 G, 14.0 GFLOP
per token plus 0.26 MFLOP per token of context. MFU is achieved FLOP/s over the bf16 matrix
product peak measured in the same run (8192^3, timed with CUDA events).
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from linq_eval.provenance import package_version


def model_flops(model: torch.nn.Module, lengths: Sequence[int]) -> float:
    """FLOPs of encoding inputs of these lengths (see the module docstring)."""
    config = model.config
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    params = matmul_params(model)
    n = np.asarray(lengths, dtype=np.float64)
    attention = 2.0 * config.num_hidden_layers * heads * head_dim * (n * (n + 1)).sum()
    return float(2.0 * params * n.sum() + attention)


def matmul_params(model: torch.nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def matmul_peak_tflops(device: torch.device, n: int = 8192, iters: int = 10) -> float:
    """bf16 n^3 matrix product rate on this GPU, timed with CUDA events (TFLOP/s)."""
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize(device)
    start.record()
    for _ in range(iters):
        a @ b
    end.record()
    torch.cuda.synchronize(device)
    seconds = start.elapsed_time(end) / 1000
    del a, b
    torch.cuda.empty_cache()
    return 2 * n**3 * iters / seconds / 1e12


class TokenCounter:
    """Counts the token positions each forward pass computes: the ids that go through the
    model's input embedding (sentence-transformers calls ``model.forward`` directly, past
    any hook on the model itself)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.tokens = 0
        self._handle = model.get_input_embeddings().register_forward_pre_hook(self._hook)

    def _hook(self, module: Any, args: tuple) -> None:
        if args and isinstance(args[0], torch.Tensor):
            self.tokens += args[0].numel()

    def reset(self) -> None:
        self.tokens = 0

    def remove(self) -> None:
        self._handle.remove()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError):  # Linux: "5" resets the peak RSS (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory(device: torch.device) -> int | None:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def device_info(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return {
            "type": "cuda",
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count,
            "capability": f"{props.major}.{props.minor}",
        }
    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return {
        "type": "cpu",
        "name": name,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def versions() -> dict[str, str | None]:
    dists = ("linq-eval", "torch", "transformers", "tokenizers", "sentence-transformers", "numpy")
    found = {"python": platform.python_version(), **{d: package_version(d) for d in dists}}
    return found | {"torch": torch.__version__, "cuda": torch.version.cuda}


__all__ = [
    "TokenCounter",
    "device_info",
    "matmul_params",
    "matmul_peak_tflops",
    "model_flops",
    "peak_memory",
    "reset_peak_memory",
    "sync",
    "versions",
]
