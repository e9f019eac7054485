"""Data-parallel encoding over several processes (one per GPU), launched with ``torchrun``.

Every rank runs the same evaluation; only the encoding is split, by fixed-size chunks
(``CachedEncoder.embed_unique``), each embedded by one rank with exactly the batches a single
process would form for it: the scores do not depend on the number of processes. Rank 0 alone
reads and writes the embedding cache, the result files and the run record. Collectives use
NCCL on CUDA and gloo on CPU.

    torchrun --standalone --nproc-per-node 8 -m linq_eval.cli run --model linq-embed-mistral
    linq-eval run --devices 0 1 2 3 4 5 6 7        # the same, torchrun started for you
    linq-eval run --devices cpu cpu ...            # two CPU processes (gloo): for tests
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from linq_eval.errors import ConfigError, LinqEvalError, LockHeldError


@dataclass(frozen=True)
class Group:
    """This process's place in a data-parallel run."""

    rank: int
    """Global rank (0 writes results)."""
    world_size: int
    local_rank: int
    """Rank on this node: the index of the GPU this process uses."""
    backend: str
    """``nccl`` (CUDA) or ``gloo`` (CPU)."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> str:
        return f"cuda:{self.local_rank}" if self.backend == "nccl" else "cpu"


def _launched_by_torchrun() -> bool:
    """Whether this process was started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_from_env(device: str | None = None, timeout_s: float = 3600.0) -> Group | None:
    """Join the process group torchrun set up; None when not under torchrun (one process).

    ``device``: ``cpu`` forces gloo on CPU; otherwise each rank uses ``cuda:LOCAL_RANK``.
    """
    if not _launched_by_torchrun():
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if device not in (None, "cpu", "auto", "cuda"):
        raise ConfigError(
            f"Under torchrun each process uses the GPU of its local rank; --device {device!r} "
            "cannot be honoured (give --device cpu, or nothing)."
        )
    if device == "cuda" and not use_cuda:
        raise ConfigError("device 'cuda' asked for under torchrun, but CUDA is not available")
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    return Group(dist.get_rank(), dist.get_world_size(), local_rank, backend)


def current() -> Group | None:
    """The active group, or None in a single-process run."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    backend = str(dist.get_backend())
    local_rank = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return Group(dist.get_rank(), dist.get_world_size(), local_rank, backend)


def shutdown() -> None:
    """Leave the process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_object(obj: Any, group: Group | None) -> Any:
    """Rank 0's ``obj`` on every rank (small picklable objects)."""
    if group is None:
        return obj
    box = [obj if group.is_main else None]
    dist.broadcast_object_list(box, src=0, device=torch.device(group.device))
    return box[0]


def on_main(group: Group | None, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on rank 0 only; its result, or the user error it raised, reaches every rank
    (raised there as the same class: ``LockHeldError``, else ``ConfigError``)."""
    outcome: dict[str, Any] = {"value": None, "error": None}
    if group is None or group.is_main:
        try:
            outcome["value"] = fn()
        except LinqEvalError as exc:
            if group is None:
                raise
            outcome["error"] = (type(exc).__name__, str(exc))
    outcome = broadcast_object(outcome, group)
    if outcome["error"]:
        kind, message = outcome["error"]
        raise (LockHeldError if kind == "LockHeldError" else ConfigError)(message)
    return outcome["value"]


def all_gather_object(obj: Any, group: Group | None) -> list[Any]:
    """Every rank's ``obj``, in rank order (small picklable objects)."""
    if group is None:
        return [obj]
    out: list[Any] = [None] * group.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(group: Group | None) -> None:
    if group is not None:
        if group.backend == "nccl":
            dist.barrier(device_ids=[group.local_rank])
        else:
            dist.barrier()


def broadcast_array(
    array: np.ndarray | None, shape: tuple[int, ...], group: Group | None
) -> np.ndarray:
    """Rank 0's float32 ``array`` (of known ``shape``) on every rank."""
    if group is None:
        assert array is not None
        return array
    if group.is_main:
        assert array is not None and array.shape == shape
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(group.device)
    else:
        tensor = torch.empty(shape, dtype=torch.float32, device=torch.device(group.device))
    if tensor.numel():
        dist.broadcast(tensor, src=0)
    return tensor.cpu().numpy()


def all_gather_rows(
    local: np.ndarray, counts: Sequence[int], dim: int, group: Group | None
) -> list[np.ndarray]:
    """Gather each rank's float32 rows; rank ``r`` contributes ``counts[r]`` rows of ``dim``.

    Every rank knows all counts in advance, so rows are padded to the largest count and sliced.
    """
    if group is None:
        return [local]
    width = max(counts) if counts else 0
    if width == 0:
        return [np.empty((0, dim), np.float32) for _ in counts]
    device = torch.device(group.device)
    padded = torch.zeros((width, dim), dtype=torch.float32, device=device)
    if len(local):
        padded[: len(local)] = torch.from_numpy(np.ascontiguousarray(local, dtype=np.float32))
    out = [torch.empty_like(padded) for _ in range(group.world_size)]
    dist.all_gather(out, padded)
    return [t[:n].cpu().numpy() for t, n in zip(out, counts, strict=True)]


# --------------------------------------------------------------------------- launching


def visible_gpu_count() -> int:
    """How many CUDA GPUs this process sees (0 without CUDA); creates no CUDA context."""
    return torch.cuda.device_count()


def parse_devices(devices: Sequence[str]) -> tuple[str, list[str]]:
    """``("cuda", ["0", "1"])`` for ``0 1`` / ``cuda:0 cuda:1``; ``("cpu", ["cpu", "cpu"])``.

    Mixing CPU and GPUs, repeating a GPU, a malformed entry, or a GPU that is not visible
    (no CUDA, or fewer GPUs than named) is an error.
    """
    if not devices:
        raise ConfigError("--devices needs at least one device (GPU indices such as 0 1, or cpu)")
    kinds = {"cpu" if d == "cpu" else "cuda" for d in devices}
    if len(kinds) > 1:
        raise ConfigError(f"--devices mixes CPU and GPUs: {' '.join(devices)}")
    if kinds == {"cpu"}:
        return "cpu", list(devices)
    indices = []
    for d in devices:
        text = d.removeprefix("cuda:")
        if not text.isdigit():
            raise ConfigError(
                f"Bad device {d!r} in --devices: give GPU indices (0 1 ...), cuda:N, or cpu"
            )
        indices.append(str(int(text)))
    if len(set(indices)) != len(indices):
        raise ConfigError(f"--devices repeats a GPU: {' '.join(devices)}")
    # Named GPUs must exist: no silent fall-back to CPU processes.
    count, named = visible_gpu_count(), " ".join(devices)
    masked = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = f" (CUDA_VISIBLE_DEVICES={masked!r})" if masked is not None else ""
    if count == 0:
        raise ConfigError(
            f"--devices {named} names GPUs, but no CUDA GPU is visible here{where}. "
            "For CPU processes give --devices cpu cpu ..."
        )
    beyond = [i for i in indices if int(i) >= count]
    if beyond:
        raise ConfigError(
            f"--devices {named} names GPU {', '.join(beyond)}, but only {count} GPU(s) are "
            f"visible{where}: {' '.join(str(i) for i in range(count))}."
        )
    return "cuda", indices


def torchrun_command(
    devices: Sequence[str], args: Sequence[str]
) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run ``linq-eval <args>`` once per device."""
    kind, ids = parse_devices(devices)
    env = dict(os.environ)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={len(ids)}",
        "-m",
        "linq_eval.cli",
        *args,
    ]
    if kind == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
        cmd += ["--device", "cpu"]
    else:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(ids)
    env.setdefault("OMP_NUM_THREADS", "1")  # what torchrun would set, without its warning
    return cmd, env


def strip_option(argv: Sequence[str], option: str) -> list[str]:
    """``argv`` without ``option`` and the values that follow it (``--devices 0 1``)."""
    out: list[str] = []
    skipping = False
    for arg in argv:
        if arg == option:
            skipping = True
            continue
        if arg.startswith(option + "="):
            skipping = False
            continue
        if skipping and not arg.startswith("-"):
            continue
        skipping = False
        out.append(arg)
    return out


def launch(devices: Sequence[str], args: Sequence[str]) -> int:
    """Run ``linq-eval <args>`` under torchrun on ``devices``; returns its exit code."""
    if _launched_by_torchrun():
        raise ConfigError("--devices starts torchrun itself; do not give it under torchrun")
    cmd, env = torchrun_command(devices, args)
    print("launching: " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.call(cmd, env=env)


__all__ = [
    "Group",
    "all_gather_object",
    "all_gather_rows",
    "barrier",
    "broadcast_array",
    "broadcast_object",
    "current",
    "init_from_env",
    "launch",
    "on_main",
    "parse_devices",
    "shutdown",
    "strip_option",
    "torchrun_command",
    "visible_gpu_count",
]
