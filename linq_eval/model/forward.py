"""One forward pass of a batch of token id lists through the model, pooled.

Padded rows (the straightforward way: rows padded to the longest, attention masked) or one
packed row of real tokens only (linq_eval.model.packed_attention), as the speed options say;
under ``attention="auto"`` the packed kernel is chosen once, by self-check, the first time
it is needed.
"""

from __future__ import annotations

import inspect
from itertools import chain
from typing import Any

import numpy as np
import torch

from linq_eval.model import packed_attention
from linq_eval.model.pooling import pool, pool_packed
from linq_eval.model.speed import AUTO, SpeedOptions
from linq_eval.model.tokenization import SpecialTokens
from linq_eval.profiles import Profile
from linq_eval.thirdparty.transformers_private import attention_switched


class ModelForward:
    """Pooled float32 vectors of token id lists, one forward pass per call."""

    def __init__(
        self,
        model: torch.nn.Module,
        profile: Profile,
        device: torch.device,
        speed: SpeedOptions,
        special: SpecialTokens,
        pad_id: int,
    ) -> None:
        self.model = model
        self.profile = profile
        self.device = device
        self.dtype = next(model.parameters()).dtype
        self.speed = speed
        self.special = special
        self.pad_id = pad_id
        self._attention = None if speed.attention == AUTO else speed.attention
        self.attention_note: str | None = None
        """Why faster attention kernels were not used (after ``attention_mode``)."""
        # An encoder never reads a KV cache: building one is work and memory for nothing.
        takes_use_cache = "use_cache" in inspect.signature(model.forward).parameters
        self._model_kwargs = {"use_cache": False} if takes_use_cache else {}

    def attention_mode(self) -> str:
        """``padded`` or ``varlen-<kernel>``: the option's, or under ``auto`` chosen once, the
        first time it is needed (``packed_attention.select_attention``)."""
        if self._attention is None:
            self._attention, self.attention_note = packed_attention.select_attention(
                self.model,
                self.device,
                self.dtype,
                self.profile.max_length,
                self.check_packed_model,
            )
        elif self._attention != packed_attention.PADDED:
            packed_attention.register_packed_attention()
        return self._attention

    def probe(self, tokens: int) -> None:
        """CUDA: one forward pass of ``tokens // max_length`` random max-length inputs
        (for ``linq_eval.model.speed.fit_token_budget``)."""
        length = self.profile.max_length
        vocab = self.model.config.vocab_size
        rows = max(1, tokens // length)
        ids = np.random.default_rng(0).integers(vocab // 4, vocab // 2, size=(rows, length))
        self(ids.tolist())
        torch.cuda.synchronize(self.device)

    @torch.inference_mode()
    def __call__(self, batch: list[list[int]]) -> np.ndarray | torch.Tensor:
        """One forward pass and pooling: float32 [len(batch), dim].

        A numpy array on CPU; on CUDA a tensor still on the GPU (``embed_ids`` copies it
        back one batch later, so that the copy does not stall the queue).
        """
        mode = self.attention_mode()
        if mode == packed_attention.PADDED:
            pooled = self.padded(batch)
        else:
            pooled = self.packed(batch, mode.removeprefix("varlen-"))
        return pooled if self.device.type == "cuda" else pooled.cpu().numpy()

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        """Host array to the model's device; on CUDA through pinned memory, asynchronously."""
        tensor = torch.from_numpy(array)
        if self.speed.pinned_memory:  # (only ever on for CUDA: SpeedOptions.on)
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def padded(self, batch: list[list[int]]) -> torch.Tensor:
        """Rows padded to the longest one, attention masked: the straightforward way."""
        lens = np.fromiter(map(len, batch), dtype=np.int64, count=len(batch))
        width = int(lens.max())
        flat = np.fromiter(chain.from_iterable(batch), dtype=np.int64, count=int(lens.sum()))
        columns = np.arange(width)[None, :]
        if self.profile.padding_side == "left":
            real = columns >= (width - lens)[:, None]
        else:
            real = columns < lens[:, None]
        # Row-major order visits each row's real positions in order: flat fills them exactly.
        ids_host = np.full((len(batch), width), self.pad_id, dtype=np.int64)
        ids_host[real] = flat
        input_ids = self._to_device(ids_host)
        mask = self._to_device(real.astype(np.int64))
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": mask}
        if self.profile.pooling == "last":
            # Real positions 0..n-1 for every row, whichever side is padded.
            kwargs["position_ids"] = (mask.cumsum(1) - 1).clamp(min=0)
        hidden = self.model(**kwargs, **self._model_kwargs).last_hidden_state
        return pool(hidden, mask, self.profile.pooling).float()

    def packed(self, batch: list[list[int]], kernel: str) -> torch.Tensor:
        """All rows concatenated into one row of real tokens, no padding anywhere.

        Positions restart at 0 for every input and attention stays within each input
        (linq_eval.model.packed_attention), so each input is computed exactly as if alone.
        """
        lens = np.fromiter(map(len, batch), dtype=np.int64, count=len(batch))
        packed, positions = packed_attention.Packed.of(kernel, lens, self._to_device)
        flat = np.fromiter(chain.from_iterable(batch), dtype=np.int64, count=int(lens.sum()))
        # transformers builds no attention mask for an implementation without a registered
        # mask function, which is what a packed row needs: attention_function masks by itself.
        with attention_switched(self.model.config, packed_attention.PACKED_ATTENTION):
            hidden = self.model(
                input_ids=self._to_device(flat)[None],
                position_ids=self._to_device(positions)[None],
                linq_packed=packed,
                **self._model_kwargs,
            ).last_hidden_state[0]
        if packed.calls == 0:
            raise RuntimeError(
                f"{type(self.model).__name__} did not route attention through the packed "
                "implementation: packed rows would attend across inputs"
            )
        return pool_packed(hidden, packed, self.profile.pooling).float()

    @torch.inference_mode()
    def check_packed_model(self, kernel: str) -> None:
        """Raise unless the whole model, packed with ``kernel``, gives the padded result on
        three short inputs (catches a model that does not pass the packing through)."""
        vocab = self.model.config.vocab_size
        gen = torch.Generator().manual_seed(0)
        rows = [
            [
                *self.special.prefix,
                *torch.randint(vocab // 4, vocab // 2, (n,), generator=gen).tolist(),
                *self.special.suffix,
            ]
            for n in (9, 3, 17)
        ]
        got = self.packed(rows, kernel)
        want = torch.cat([self.padded([row]) for row in rows])
        if self.dtype == torch.float32:
            err = ((got - want).abs().max() / want.abs().max().clamp(min=1e-6)).item()
            if not err <= 1e-3:
                raise RuntimeError(f"packed model output differs from padded by {err:.2e}")
        else:  # half precision: matrix products of other shapes round differently
            cos = torch.nn.functional.cosine_similarity(got.float(), want.float(), dim=-1)
            if not cos.min().item() >= 0.99:
                raise RuntimeError(
                    f"packed model output differs from padded: cosine {cos.min().item():.4f}"
                )


__all__ = ["ModelForward"]
