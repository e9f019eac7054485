"""The encoder: mteb's EncoderProtocol for decoder embedding models (and mean-pooled encoders).

What it guarantees, for every input:
- the task instruction (``"Instruct: {instruction}\\nQuery: "``) exactly where the policy says,
  never mteb's generic fallback prompt: a task without an instruction is an error;
- BOS first and EOS last, also after truncation (see linq_eval.model.tokenization);
- last-token pooling that is right under left and right padding (the position of the last
  real token is read from the attention mask, not assumed);
- length-sorted batches under a token budget, results returned in input order, identical
  texts encoded once; the same text gives the same embedding whatever its batch holds;
- float32 numpy output, L2-normalised where the policy says, checked for NaN/inf.

Only torch and transformers are imported at module load: the GPU benchmark machine has no
mteb, which is imported lazily where mteb objects are needed.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import torch

from linq_eval.errors import ConfigError, LinqEvalError
from linq_eval.model.policies import Policy, get_policy
from linq_eval.model.profiles import MIN_MAX_LENGTH, Profile, profile_for_model
from linq_eval.model.tokenization import SpecialTokens, needs_repair, special_tokens_for, tokenize

logger = logging.getLogger(__name__)

DEFAULT_TOKEN_BUDGET = {"cuda": 65536, "cpu": 8192}
MAX_BATCH_ROWS = 1024
MAX_PACKED_ROWS = 16384


class EncodingError(LinqEvalError):
    """Bad input text or a bad embedding, with the task, split and row it came from."""


@dataclass
class EncodeStats:
    """Counters over the encoder's lifetime, written to the run record."""

    texts: int = 0
    unique_texts: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    truncated: int = 0
    empty: int = 0
    repaired: int = 0
    """Input texts with lone surrogates, encoded with U+FFFD in their place."""
    oom_retries: int = 0
    seconds: float = 0.0
    per_task: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "texts": self.texts,
            "unique_texts": self.unique_texts,
            "tokens": self.tokens,
            "padded_tokens": self.padded_tokens,
            "truncated": self.truncated,
            "empty": self.empty,
            "repaired": self.repaired,
            "oom_retries": self.oom_retries,
            "seconds": round(self.seconds, 3),
            "tokens_per_s": round(self.tokens / self.seconds, 1) if self.seconds else None,
            "per_task": self.per_task,
        }


def resolve_device(device: str | None) -> torch.device:
    """``None``/``auto``: CUDA when available, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"Unknown device {device!r} (e.g. cpu, cuda, cuda:1)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} asked for, but CUDA is not available here")
    return dev


_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
_DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32", "half": "float16"}


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """``auto``: bf16 on CUDA, fp32 on CPU."""
    if isinstance(dtype, torch.dtype):
        return dtype
    name = _DTYPE_ALIASES.get(dtype, dtype)
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return _DTYPES[name]
    except KeyError:
        raise ConfigError(
            f"Unknown dtype {dtype!r}; valid: auto, {', '.join(_DTYPES)}"
        ) from None


def best_attn_implementation(device: torch.device) -> str:
    """flash-attention 2 when installed on CUDA, else PyTorch SDPA."""
    if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def resolve_model_path(model: str) -> tuple[str, str | None]:
    """Where to load weights from: ``(path_or_hub_id, gguf_file)``.

    ``pkg:<module>`` is a model shipped inside a Python package exposing ``get_model_path()``.
    """
    if model.startswith("pkg:"):
        module = model[4:]
        try:
            return str(importlib.import_module(module).get_model_path()), None
        except ImportError as exc:
            raise ConfigError(
                f"The model package {module!r} is not installed (pip install "
                f"{module.replace('_', '-')})"
            ) from exc
    path = Path(model)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ConfigError(f"GGUF file not found: {path}")
        return str(path.parent), path.name
    if path.exists() or model.startswith((".", "/", "~")):
        path = path.expanduser()
        if not path.is_dir():
            raise ConfigError(f"Model directory not found: {path}")
        if not (path / "config.json").is_file():
            raise ConfigError(f"{path} has no config.json: not a transformers model directory")
        weights = [*path.glob("*.safetensors"), *path.glob("*.bin"), *path.glob("*.gguf")]
        if not weights:
            raise ConfigError(
                f"{path} has no weights (*.safetensors, *.bin or *.gguf): "
                "did the download finish?"
            )
        return str(path), None
    return model, None


class DecoderEncoder:
    """An mteb encoder for (instruction-tuned) embedding models.

    Build it with :func:`load_encoder`; tests and benchmarks may pass a ready model and
    tokenizer directly.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        profile: Profile,
        *,
        device: torch.device | str | None = None,
        token_budget: int | None = None,
        instruction_set: Any | None = None,
        model_meta: Any | None = None,
        progress: bool = True,
        attn_implementation: str | None = None,
    ) -> None:
        self.profile = profile
        self.policy: Policy = get_policy(profile.policy)
        self.device = resolve_device(device) if not isinstance(device, torch.device) else device
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.dtype = next(model.parameters()).dtype
        self.attn_implementation = attn_implementation or getattr(
            getattr(model, "config", None), "_attn_implementation", None
        )
        if profile.max_length < MIN_MAX_LENGTH:
            raise ConfigError(f"max_length={profile.max_length} is below {MIN_MAX_LENGTH}")
        limit = min(
            profile.model_max_length,
            getattr(model.config, "max_position_embeddings", profile.model_max_length),
        )
        if profile.max_length > limit:
            raise ConfigError(
                f"max_length={profile.max_length} exceeds the model's limit of {limit} tokens"
            )
        if profile.pooling not in ("last", "mean"):
            raise ConfigError(f"Unknown pooling {profile.pooling!r}; valid: last, mean")
        check_poolable(model.config, model)
        self.special: SpecialTokens = special_tokens_for(tokenizer, profile.eos, profile.bos)
        self.pad_id = self._pad_id()
        self.token_budget = token_budget or DEFAULT_TOKEN_BUDGET.get(self.device.type, 8192)
        if self.token_budget < profile.max_length:
            raise ConfigError(
                f"token_budget={self.token_budget} is smaller than max_length="
                f"{profile.max_length}: the longest input would not fit in a batch"
            )
        self.instruction_set = instruction_set
        if profile.instructions and instruction_set is None and self.policy.instruct:
            from linq_eval.prompts.instruction_sets import load_instruction_set

            self.instruction_set = load_instruction_set(profile.instructions)
        self._model_meta = model_meta
        self.progress = progress
        self.stats = EncodeStats()
        # Set by the suite runner (linq_eval.run.runner): an on-disk EmbeddingCache, and the size
        # of the chunks encode_texts persists. Either one switches on chunked encoding with
        # embeddings rounded to float16 as stored (linq_eval.run.cache.encode_unique).
        self.embedding_cache: Any | None = None
        self.chunk_texts: int | None = None

    # ----------------------------------------------------------------- mteb protocol
    @property
    def mteb_model_meta(self) -> Any:
        """mteb's own ModelMeta for models it knows (name and pinned revision), else a new one."""
        if self._model_meta is None:
            self._model_meta = build_model_meta(self.profile)
        return self._model_meta

    def encode(
        self,
        inputs: Iterable[dict[str, Any]],
        *,
        task_metadata: Any,
        hf_split: str,
        hf_subset: str,
        prompt_type: Any | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """Encode an mteb DataLoader of batches (``batch["text"]``) for one task."""
        texts = [text for batch in inputs for text in batch["text"]]
        ptype = getattr(prompt_type, "value", prompt_type)
        task_name, task_type = task_metadata.name, task_metadata.type
        prefix = self.prompt_for(task_name, task_type, ptype)
        where = f"task {task_name}, subset {hf_subset}, split {hf_split}"
        self._check_prompt_fits(prefix, where)
        show = kwargs.get("show_progress_bar", self.progress)
        return self.encode_texts(
            texts,
            prefix=prefix,
            normalize=self.policy.normalise(task_type),
            where=where,
            progress=bool(show),
            label=task_name,
        )

    def similarity(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        """Cosine similarity matrix (what the card's scores are, /100)."""
        a = _normalised_tensor(embeddings1)
        b = _normalised_tensor(embeddings2)
        return a @ b.T

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        """Cosine similarity of corresponding rows."""
        a = _normalised_tensor(embeddings1)
        b = _normalised_tensor(embeddings2)
        return (a * b).sum(-1)

    # ----------------------------------------------------------------- prompts
    def prompt_for(self, task_name: str, task_type: str, prompt_type: str | None) -> str:
        """The exact prefix of an input of this task and prompt type ('' when none)."""
        if not self.policy.applies(task_type, prompt_type):
            return ""
        if self.instruction_set is None:
            raise ConfigError(
                f"Policy {self.policy.name!r} instructs {task_type} inputs but the profile "
                f"{self.profile.name!r} has no instruction set"
            )
        return self.profile.template.format(instruction=self.instruction_set.get(task_name))

    def _check_prompt_fits(self, prefix: str, where: str) -> None:
        """Truncation cuts the text after the prompt: a prompt that fills max_length would give
        every input of the task the same embedding."""
        if not prefix:
            return
        n = len(self.tokenizer(prefix, add_special_tokens=False)["input_ids"])
        room = self.profile.max_length - len(self.special.prefix) - len(self.special.suffix) - n
        if room < 1:
            raise ConfigError(
                f"{where}: the instruction prompt takes {n} tokens, which leaves no room for "
                f"text within max_length={self.profile.max_length}; raise --max-length"
            )

    def settings(self) -> dict[str, Any]:
        """Everything about this encoder that changes a score, for the run record."""
        meta = self.mteb_model_meta
        iset = self.instruction_set
        return {
            "model": getattr(meta, "name", None) or self.profile.model,
            "revision": getattr(meta, "revision", None) or self.profile.revision,
            "profile": self.profile.name,
            "model_source": self.profile.model,
            "pooling": self.profile.pooling,
            "policy": self.policy.name,
            "template": self.profile.template,
            "instructions": getattr(iset, "name", None),
            "instructions_version": getattr(iset, "version", None),
            "max_length": self.profile.max_length,
            "dtype": str(self.dtype).replace("torch.", ""),
            "device": str(self.device),
            "attn_implementation": self.attn_implementation,
            "eos": self.profile.eos,
            "bos": self.profile.bos,
            "special_tokens": {"prefix": list(self.special.prefix), "suffix": list(self.special.suffix)},
            "padding_side": self.profile.padding_side,
            "token_budget": self.token_budget,
            "embedding_precision": "float16" if self._chunked else "float32",
            "speed": self._speed_settings(),
        }

    @property
    def _chunked(self) -> bool:
        return self.embedding_cache is not None or self.chunk_texts is not None

    def task_prompts(self, task_names: Sequence[str]) -> dict[str, dict[str, str]]:
        """The exact prefix each task's query side and document side receive (needs mteb)."""
        from linq_eval.prompts.instruction_sets import input_prompt_types, task_types

        types = task_types(task_names)
        sides = input_prompt_types(task_names)
        return {
            name: {
                side: self.prompt_for(name, types[name], ptype) for side, ptype in sides[name].items()
            }
            for name in task_names
        }

    def prompt_hash(self, task_names: Sequence[str]) -> str:
        """A short hash of every prefix these tasks' inputs receive under this encoder."""
        prompts = self.task_prompts(sorted(set(task_names)))
        blob = json.dumps(
            {"template": self.profile.template, "prompts": prompts}, sort_keys=True,
            ensure_ascii=False,
        ).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    # ----------------------------------------------------------------- encoding
    def encode_texts(
        self,
        texts: Sequence[Any],
        *,
        prefix: str = "",
        normalize: bool = True,
        where: str = "input",
        progress: bool | None = None,
        label: str | None = None,
    ) -> np.ndarray:
        """Embed ``texts`` (each prefixed with ``prefix``); float32, in input order."""
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise EncodingError(
                    f"{where}, row {row}: expected a string, got {type(text).__name__} "
                    f"({text!r:.80})"
                )
        started = time.perf_counter()
        # Whitespace-only text is embedded as empty text, the prompt plus EOS (mteb strips
        # corpus text the same way); lone surrogates are encoded as U+FFFD (tokenization).
        self.stats.empty += sum(1 for t in texts if not t.strip())
        self.stats.repaired += sum(1 for t in texts if needs_repair(t))
        unique: dict[str, int] = {}
        inverse = np.fromiter(
            (unique.setdefault(prefix + (t if t.strip() else ""), len(unique)) for t in texts),
            dtype=np.int64, count=len(texts),
        )
        full_texts = list(unique)
        show = self.progress if progress is None else progress
        cache_counts: dict[str, int] = {}
        if self._chunked:
            from linq_eval.run.cache import encode_unique

            chunked = encode_unique(self, full_texts, progress=show, label=label or where)
            emb, n_tokens = chunked.embeddings, chunked.tokens
            self.stats.truncated += chunked.truncated
            cache_counts = {
                "encoded_texts": chunked.encoded_texts, "cached_texts": chunked.cached_texts
            }
        else:
            tokenized = tokenize(self.tokenizer, full_texts, self.special, self.profile.max_length)
            self.stats.truncated += tokenized.n_truncated
            emb = self._embed_ids(tokenized.ids, progress=show, label=label or where)
            n_tokens = sum(len(ids) for ids in tokenized.ids)
        if not np.isfinite(emb).all():
            bad_unique = int(np.where(~np.isfinite(emb).all(1))[0][0])
            row = int(np.where(inverse == bad_unique)[0][0])
            hint = (
                " (float16 overflow: activations beyond float16's range of 65504; rerun with "
                "--dtype bfloat16, which keeps float32's range, or --dtype float32)"
                if self.dtype == torch.float16
                else ""
            )
            raise EncodingError(f"{where}, row {row}: the embedding contains NaN or inf{hint}")
        if normalize:
            norms = np.linalg.norm(emb, axis=1, keepdims=True)
            emb = emb / np.maximum(norms, 1e-12)
        out = emb[inverse]
        elapsed = time.perf_counter() - started
        self.stats.texts += len(texts)
        self.stats.unique_texts += len(full_texts)
        self.stats.tokens += n_tokens
        self.stats.seconds += elapsed
        if label:
            task = self.stats.per_task.setdefault(label, {"texts": 0, "tokens": 0, "seconds": 0.0})
            task["texts"] += len(texts)
            task["tokens"] += n_tokens
            task["seconds"] += elapsed
            for key, value in cache_counts.items():
                task[key] = task.get(key, 0) + value
        return out.astype(np.float32, copy=False)

    def _embed_ids(self, ids: list[list[int]], *, progress: bool, label: str) -> np.ndarray:
        """Embed token id lists: longest first, batches under the token budget.

        On CUDA the host runs one batch ahead: batch i+1 is queued on the GPU before the
        embeddings of batch i are copied back, so the GPU does not wait for Python in between.
        """
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        dim = self.model.config.hidden_size
        out = np.empty((len(ids), dim), dtype=np.float32)
        bar = _progress_bar(len(ids), label, enabled=progress)
        done_tokens, t0 = 0, time.perf_counter()
        pending: list[tuple[list[int], Any]] = []
        ahead = 1 if self.device.type == "cuda" else 0

        def collect(keep: int) -> None:
            nonlocal done_tokens
            while len(pending) > keep:
                rows, vectors = pending.pop(0)
                out[rows] = vectors.cpu().numpy() if isinstance(vectors, torch.Tensor) else vectors
                done_tokens += sum(len(ids[i]) for i in rows)
                if bar is not None:
                    bar.update(len(rows))
                    rate = done_tokens / max(time.perf_counter() - t0, 1e-9)
                    bar.set_postfix_str(f"{rate:,.0f} tok/s", refresh=False)

        for batch in self._batches(order, ids):
            pending.append((batch, self._forward_with_retry([ids[i] for i in batch])))
            collect(ahead)
        collect(0)
        if bar is not None:
            bar.close()
        return out

    def _batches(self, order: list[int], ids: list[list[int]]) -> Iterable[list[int]]:
        """Consecutive runs of ``order`` whose computed size fits the token budget.

        The computed size is rows x longest row for padded batches, and the sum of the
        lengths for packed (varlen) ones, which compute no padding.
        """
        packed = self._attention_mode() != "padded"
        max_rows = MAX_PACKED_ROWS if packed else MAX_BATCH_ROWS
        batch: list[int] = []
        width = total = 0
        for i in order:
            n = len(ids[i])
            new_width = max(width, n)
            size = total + n if packed else new_width * (len(batch) + 1)
            if batch and (size > self.token_budget or len(batch) >= max_rows):
                yield batch
                batch, new_width, total = [], n, 0
            batch.append(i)
            width = new_width
            total += n
        if batch:
            yield batch

    def _forward_with_retry(self, batch: list[list[int]]) -> np.ndarray | torch.Tensor:
        """Forward a batch; on CUDA out-of-memory halve it (and the budget), down to one row."""
        try:
            return self._forward(batch)
        except torch.OutOfMemoryError:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            if len(batch) == 1:
                raise EncodingError(
                    f"Out of memory on a single input of {len(batch[0])} tokens: lower "
                    "--max-length or use a larger GPU"
                ) from None
            self.stats.oom_retries += 1
            self.token_budget = max(self.token_budget // 2, self.profile.max_length)
            logger.warning("CUDA out of memory: token budget halved to %d", self.token_budget)
            half = len(batch) // 2
            first = self._forward_with_retry(batch[:half])
            second = self._forward_with_retry(batch[half:])
            if isinstance(first, torch.Tensor) and isinstance(second, torch.Tensor):
                return torch.cat([first, second])
            return np.concatenate([_as_numpy(first), _as_numpy(second)])

    @torch.inference_mode()
    def _forward(self, batch: list[list[int]]) -> np.ndarray | torch.Tensor:
        """One forward pass and pooling: float32 [len(batch), dim].

        A numpy array on CPU; on CUDA a tensor still on the GPU (``_embed_ids`` copies it
        back one batch later, so that the copy does not stall the queue).
        """
        mode = self._attention_mode()
        if mode == "padded":
            pooled = self._forward_padded(batch)
        else:
            pooled = self._forward_packed(batch, mode.removeprefix("varlen-"))
        if self.device.type == "cuda":
            return pooled
        return pooled.cpu().numpy()

    def _model_kwargs(self) -> dict[str, Any]:
        """``use_cache=False`` where the model takes it: an encoder never needs a KV cache,
        and building one costs time and memory in every layer."""
        accepts = getattr(self, "_accepts_use_cache", None)
        if accepts is None:
            params = inspect.signature(self.model.forward).parameters
            accepts = self._accepts_use_cache = "use_cache" in params
        return {"use_cache": False} if accepts and getattr(self, "_no_kv_cache", True) else {}

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        """Host array to the model's device; on CUDA through pinned memory, asynchronously."""
        tensor = torch.from_numpy(array)
        if self.device.type == "cuda" and getattr(self, "_pinned", True):
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def _forward_padded(self, batch: list[list[int]]) -> torch.Tensor:
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
        self.stats.padded_tokens += ids_host.size
        input_ids = self._to_device(ids_host)
        mask = self._to_device(real.astype(np.int64))
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": mask}
        if self.profile.pooling == "last":
            # Real positions 0..n-1 for every row, whichever side is padded.
            kwargs["position_ids"] = (mask.cumsum(1) - 1).clamp(min=0)
        with self._elementwise_context():
            hidden = self.model(**kwargs, **self._model_kwargs()).last_hidden_state
        return pool(hidden, mask, self.profile.pooling).float()

    def _forward_packed(self, batch: list[list[int]], kernel: str) -> torch.Tensor:
        """All rows concatenated into one row of real tokens, no padding anywhere.

        Positions restart at 0 for every input and attention stays within each input
        (``_packed_attention``), so each input is computed exactly as if it were alone.
        """
        lens = np.fromiter(map(len, batch), dtype=np.int64, count=len(batch))
        bounds = np.zeros(len(batch) + 1, dtype=np.int64)
        np.cumsum(lens, out=bounds[1:])
        total = int(bounds[-1])
        flat = np.fromiter(chain.from_iterable(batch), dtype=np.int64, count=total)
        positions = np.arange(total) - np.repeat(bounds[:-1], lens)
        max_len = int(lens.max())
        pad_index = None
        if kernel == "padded":
            pad_index = self._to_device(
                np.repeat(np.arange(len(batch)) * max_len, lens) + positions
            )
        packed = _Packed(
            kernel=kernel,
            cu_seqlens=self._to_device(bounds.astype(np.int32)),
            bounds=bounds.tolist(),
            max_len=max_len,
            pad_index=pad_index,
        )
        self.stats.padded_tokens += total
        with _attention_implementation(self.model, _PACKED_ATTENTION), self._elementwise_context():
            hidden = self.model(
                input_ids=self._to_device(flat)[None],
                position_ids=self._to_device(positions)[None],
                linq_packed=packed,
                **self._model_kwargs(),
            ).last_hidden_state[0]
        if packed.calls == 0:
            raise RuntimeError(
                f"{type(self.model).__name__} did not route attention through the packed "
                "implementation: packed rows would attend across inputs"
            )
        return _pool_packed(hidden, packed, self.profile.pooling).float()

    # ----------------------------------------------------------------- fast paths
    def _attention_mode(self) -> str:
        """``padded``, or ``varlen-<kernel>`` (packed rows, see ``_PACKED_KERNELS``).

        Chosen once per encoder, the first time it is needed: the first packed kernel that
        this model, device and dtype support and that passes ``_check_packed``; else padded.
        Set ``encoder._attention`` beforehand to force one (the benchmark and tests do).
        """
        mode = getattr(self, "_attention", None)
        if mode is None:
            mode = self._attention = self._select_attention()
        elif mode != "padded" and mode.removeprefix("varlen-") not in _PACKED_KERNELS:
            raise ConfigError(
                f"Unknown attention mode {mode!r}; valid: padded, "
                + ", ".join(f"varlen-{k}" for k in _PACKED_KERNELS)
            )
        else:
            _register_packed_attention()
        return mode

    def _select_attention(self) -> str:
        reason = _packing_unsupported(self.model, self.profile.max_length)
        if reason is not None:
            self._attention_note = reason
            return "padded"
        _register_packed_attention()
        failures = []
        for kernel in _packed_kernels(self.device, self.dtype):
            try:
                self._check_packed(kernel)
            except Exception as exc:  # noqa: BLE001 - any failure rules this kernel out
                failures.append(f"{kernel}: {type(exc).__name__}: {str(exc)[:200]}")
                logger.info("packed attention %r not used: %s", kernel, exc)
                continue
            self._attention_note = "; ".join(failures) or None
            return f"varlen-{kernel}"
        self._attention_note = "; ".join(failures)
        return "padded"

    @torch.inference_mode()
    def _check_packed(self, kernel: str) -> None:
        """Raise unless ``kernel`` gives the per-input result, on its own and in this model.

        Two probes: the attention kernel on random q/k/v against per-input SDPA (catches a
        wrong mask or head grouping), and the whole model packed against padded on three
        short inputs (catches a model that does not pass the packing through).
        """
        config = self.model.config
        heads = config.num_attention_heads
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        lens = [7, 1, 13, 4]
        bounds = np.cumsum([0, *lens])
        gen = torch.Generator().manual_seed(0)
        q, k, v = (
            torch.randn(1, h, bounds[-1], head_dim, generator=gen).to(self.device, self.dtype)
            for h in (heads, kv_heads, kv_heads)
        )
        positions = np.concatenate([np.arange(n) for n in lens])
        pad_index = torch.from_numpy(
            np.repeat(np.arange(len(lens)) * max(lens), lens) + positions
        ).to(self.device)
        packed = _Packed(
            kernel,
            torch.tensor(bounds, dtype=torch.int32, device=self.device),
            bounds.tolist(),
            max(lens),
            pad_index,
        )
        module = _AttentionProbe(_is_causal(self.model))
        got = _packed_attention(module, q, k, v, None, scaling=head_dim**-0.5, linq_packed=packed)
        want = _attention_reference(
            q.float(), k.float(), v.float(), packed, module.is_causal, head_dim**-0.5
        )
        tol = 1e-4 if self.dtype == torch.float32 else 2e-2
        err = (got[0].float() - want).abs().max().item()
        if not err <= tol:
            raise RuntimeError(f"attention kernel differs from SDPA by {err:.2e} (> {tol})")

        vocab = config.vocab_size
        rows = [
            [
                *self.special.prefix,
                *torch.randint(vocab // 4, vocab // 2, (n,), generator=gen).tolist(),
                *self.special.suffix,
            ]
            for n in (9, 3, 17)
        ]
        saved = self.stats.padded_tokens
        try:
            got = self._forward_packed(rows, kernel)
            want = torch.cat([self._forward_padded([row]) for row in rows])
        finally:
            self.stats.padded_tokens = saved
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

    def _fit_token_budget(self, limit: int = 65536, headroom: float = 0.85) -> int:
        """CUDA: the token budget, as large as fits in memory, up to ``limit``.

        Matrix products of 64k rows already run at the GPU's rate; larger batches only
        make the last, partial batch of a task a larger share of its time.

        Measures the memory a forward pass of max-length inputs takes per token, sizes the
        budget to ``headroom`` of the free memory, then runs one batch of that size to
        confirm it (halving on out-of-memory). CPU: the budget is left as it is.
        """
        if self.device.type != "cuda":
            return self.token_budget
        length = self.profile.max_length
        vocab = self.model.config.vocab_size
        rng = np.random.default_rng(0)

        def probe(tokens: int) -> None:
            rows = max(1, tokens // length)
            ids = rng.integers(vocab // 4, vocab // 2, size=(rows, length)).tolist()
            saved = self.stats.padded_tokens
            self._forward(ids)
            torch.cuda.synchronize(self.device)
            self.stats.padded_tokens = saved

        _free_cuda_memory()
        start = max(length, min(limit, 8192) // length * length)
        base = torch.cuda.memory_allocated(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        probe(start)
        per_token = max(1.0, (torch.cuda.max_memory_allocated(self.device) - base) / start)
        _free_cuda_memory()
        free, _ = torch.cuda.mem_get_info(self.device)
        budget = int(min(limit, headroom * free / per_token)) // length * length
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
        self.token_budget = budget
        logger.info("token budget %d (%.0f KiB per token)", budget, per_token / 1024)
        return budget

    def _elementwise_context(self) -> contextlib.AbstractContextManager[None]:
        """``encoder._elementwise``: ``eager`` (the model's own code, the default), ``fused``
        (RMSNorm as one ``torch.rms_norm`` kernel) or ``compiled`` (RMSNorm and the MLP's
        SiLU-and-multiply through ``torch.compile``), for the duration of a forward pass."""
        mode = getattr(self, "_elementwise", "eager")
        if mode == "eager":
            return contextlib.nullcontext()
        if mode not in ("fused", "compiled"):
            raise ConfigError(f"Unknown elementwise mode {mode!r}; valid: eager, fused, compiled")
        return _patched_elementwise(self.model, mode)

    def _encode_overlapped(self, texts: Sequence[str], chunk: int = 1024) -> np.ndarray:
        """Tokenize and embed ``texts`` (distinct, prefixed) with tokenization overlapped:
        a background thread tokenizes chunk i+1 while chunk i is encoded. Un-normalised
        float32 in input order, like ``_embed_ids``."""
        from concurrent.futures import ThreadPoolExecutor

        def tokenize_chunk(start: int) -> Any:
            return tokenize(
                self.tokenizer, texts[start : start + chunk], self.special, self.profile.max_length
            )

        out = np.empty((len(texts), self.model.config.hidden_size), dtype=np.float32)
        with ThreadPoolExecutor(max_workers=1) as pool_:
            future = pool_.submit(tokenize_chunk, 0)
            for start in range(0, len(texts), chunk):
                tokenized = future.result()
                if start + chunk < len(texts):
                    future = pool_.submit(tokenize_chunk, start + chunk)
                self.stats.truncated += tokenized.n_truncated
                out[start : start + chunk] = self._embed_ids(
                    tokenized.ids, progress=False, label="overlapped"
                )
        return out

    def _speed_settings(self) -> dict[str, Any]:
        """The fast paths in use, for run records (they change speed, not scores)."""
        return {
            "attention": self._attention_mode(),
            "attention_note": getattr(self, "_attention_note", None),
            "token_budget": self.token_budget,
            "kv_cache": not getattr(self, "_no_kv_cache", True),
            "pinned_memory": self.device.type == "cuda" and getattr(self, "_pinned", True),
            "elementwise": getattr(self, "_elementwise", "eager"),
        }

    def _pad_id(self) -> int:
        pad = getattr(self.tokenizer, "pad_token_id", None)
        if pad is None:
            pad = getattr(self.tokenizer, "eos_token_id", None)
        return int(pad) if pad is not None else 0


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Last-token or mean pooling; correct for left and right padding alike."""
    if pooling == "last":
        positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        last = (positions * mask).max(dim=1).values
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


# --------------------------------------------------------------------- packed (varlen) attention
# A packed batch is one row holding every input back to back: the linear layers, norms and MLPs
# (nearly all the FLOPs) see real tokens only, and attention runs within each input. The model
# runs under a transformers attention implementation of our own, registered on first use and
# switched on only for the duration of a packed forward pass, so the same model object still
# runs padded batches (the benchmark's baselines) with its own implementation.

_PACKED_ATTENTION = "linq_eval_packed"

_PACKED_KERNELS = ("flash", "flash-rkv", "padded", "segments")
"""Kernels for attention within each input of a packed row:
- ``flash``: FlashAttention-2's varlen kernel as shipped inside PyTorch
  (``aten::_flash_attention_forward`` with cumulative lengths); CUDA, fp16/bf16, no padding;
  grouped K/V heads passed as they are;
- ``flash-rkv``: the same with K/V heads repeated to the query heads first (in case a build's
  kernel rejects grouped heads);
- ``padded``: scatter the row into a right-padded [inputs, longest] block, causal SDPA with no
  mask (right padding never reaches a real token under a causal mask), gather back; any
  device, causal models only; pads attention alone, not the linear layers;
- ``segments``: one SDPA call per input; any device; exact, one call per input and layer."""


@dataclass
class _Packed:
    """Where the inputs of a packed row start and end, handed to ``_packed_attention``."""

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
class _AttentionProbe:
    """Stands in for an attention module in ``_check_packed``."""

    is_causal: bool


def _packed_kernels(device: torch.device, dtype: torch.dtype) -> list[str]:
    """Kernels to try, fastest first, for this device and dtype."""
    if device.type == "cuda":
        flash = ["flash", "flash-rkv"] if dtype in (torch.float16, torch.bfloat16) else []
        return [*flash, "padded", "segments"]
    return ["segments", "padded"]


def _packing_unsupported(model: torch.nn.Module, max_length: int) -> str | None:
    """Why this model cannot run packed rows (None: it can, subject to ``_check_packed``)."""
    config = model.config
    if not getattr(model, "_supports_attention_backend", False):
        return f"{type(model).__name__} does not use transformers' attention interface"
    if getattr(config, "is_encoder_decoder", False):
        return "encoder-decoder model"
    window = getattr(config, "sliding_window", None)
    if window is not None and max_length > window:
        return f"max_length {max_length} exceeds the sliding window {window}"
    return None


def _is_causal(model: torch.nn.Module) -> bool:
    for module in model.modules():
        flag = getattr(module, "is_causal", None)
        if isinstance(flag, bool):
            return flag
    return True


def _register_packed_attention() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(_PACKED_ATTENTION, _packed_attention)


@contextlib.contextmanager
def _attention_implementation(model: torch.nn.Module, name: str) -> Iterable[None]:
    """Run ``model`` under attention implementation ``name`` within the block.

    transformers builds no attention mask for an implementation without a registered mask
    function, which is what a packed row needs: ``_packed_attention`` masks by itself.
    """
    config = model.config
    previous = config._attn_implementation
    config._attn_implementation = name
    try:
        yield
    finally:
        config._attn_implementation = previous


def _packed_attention(
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
    packed: _Packed | None = kwargs.get("linq_packed")
    if packed is None:
        raise RuntimeError("packed attention called without the packing (linq_packed)")
    packed.calls += 1
    causal = bool(getattr(module, "is_causal", True))
    total, heads, head_dim = query.shape[2], query.shape[1], query.shape[3]
    if packed.kernel in ("flash", "flash-rkv"):
        if packed.kernel == "flash-rkv" and key.shape[1] != heads:
            groups = heads // key.shape[1]
            key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
        q, k, v = (x[0].transpose(0, 1) for x in (query, key, value))  # [T, heads, D]
        q, k, v = (x if x.is_contiguous() else x.contiguous() for x in (q, k, v))
        out = torch.ops.aten._flash_attention_forward(
            q,
            k,
            v,
            packed.cu_seqlens,
            packed.cu_seqlens,
            packed.max_len,
            packed.max_len,
            0.0,
            causal,
            False,
            scale=scaling,
        )[0]
        return out.unsqueeze(0), None
    if packed.kernel == "padded":
        if not causal:
            raise RuntimeError("the padded kernel needs causal attention")
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
        return out.transpose(1, 2).reshape(rows * width, heads, head_dim)[index].unsqueeze(0), None
    if packed.kernel == "segments":
        out = query.new_empty(1, total, heads, head_dim)
        gqa = key.shape[1] != heads
        for start, end in zip(packed.bounds[:-1], packed.bounds[1:]):
            part = torch.nn.functional.scaled_dot_product_attention(
                query[:, :, start:end],
                key[:, :, start:end],
                value[:, :, start:end],
                is_causal=causal,
                scale=scaling,
                enable_gqa=gqa,
            )
            out[:, start:end] = part.transpose(1, 2)
        return out, None
    raise ConfigError(
        f"Unknown packed attention kernel {packed.kernel!r}; valid: {_PACKED_KERNELS}"
    )


def _attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    packed: _Packed,
    causal: bool,
    scale: float,
) -> torch.Tensor:
    """Per-input attention written out (float32): [T, H, D], for ``_check_packed``."""
    groups = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
    parts = []
    for start, end in zip(packed.bounds[:-1], packed.bounds[1:]):
        scores = q[0, :, start:end] @ k[0, :, start:end].transpose(-1, -2) * scale
        if causal:
            n = end - start
            future = torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1)
            scores = scores.masked_fill(future, float("-inf"))
        parts.append((scores.softmax(-1) @ v[0, :, start:end]).transpose(0, 1))
    return torch.cat(parts)


def _pool_packed(hidden: torch.Tensor, packed: _Packed, pooling: str) -> torch.Tensor:
    """Pool a packed row's hidden states [T, dim] into [inputs, dim]."""
    ends = packed.cu_seqlens[1:].long()
    if pooling == "last":
        return hidden[ends - 1]
    lengths = ends - packed.cu_seqlens[:-1].long()
    owner = torch.repeat_interleave(torch.arange(len(lengths), device=hidden.device), lengths)
    sums = torch.zeros(len(lengths), hidden.shape[1], dtype=torch.float32, device=hidden.device)
    sums.index_add_(0, owner, hidden.float())
    return sums / lengths.clamp(min=1).unsqueeze(1).to(sums.dtype)


# --------------------------------------------------------------------- fused elementwise work
# Between the matrix products a decoder layer runs ~15 elementwise kernels per token (two
# RMSNorms of 6 kernels each in fp32, SiLU, a multiply, rotary, residual adds). On a GPU they
# are memory-bound and can cost ~20% of a 7B forward pass; fusing the norms and the MLP's
# SiLU-and-multiply removes most of that traffic.

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


@contextlib.contextmanager
def _patched_elementwise(model: torch.nn.Module, mode: str) -> Iterable[None]:
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


def _as_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.cpu().numpy() if isinstance(x, torch.Tensor) else x


def _free_cuda_memory() -> None:
    import gc

    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()


def _normalised_tensor(x: Any) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float()
    if t.ndim == 1:
        t = t.unsqueeze(0)
    return torch.nn.functional.normalize(t, dim=-1)


def _progress_bar(total: int, label: str, *, enabled: bool) -> Any:
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"encode {label}", unit="text", leave=False, dynamic_ncols=True)


def check_poolable(config: Any, model: torch.nn.Module | None = None) -> None:
    """Raise ``ConfigError`` for a model this encoder cannot embed text with: an
    encoder-decoder (T5, BART), or one whose forward takes no token ids (vision, audio)."""
    kind = getattr(config, "model_type", None) or type(config).__name__
    if getattr(config, "is_encoder_decoder", False):
        raise ConfigError(
            f"The model is an encoder-decoder ({kind}): this encoder pools the hidden states "
            "of decoder-only or encoder-only models"
        )
    params = inspect.signature(model.forward).parameters if model is not None else {}
    wrapped = any(p.kind is p.VAR_POSITIONAL for p in params.values())  # torch.compile: unknown
    if model is not None and not wrapped and "input_ids" not in params:
        raise ConfigError(
            f"{type(model).__name__} ({kind}) does not take token ids (input_ids): "
            "not a text model this encoder can pool"
        )


def build_model_meta(profile: Profile) -> Any:
    """mteb's ModelMeta for a profile: mteb's own for models it registers, else a new one."""
    import mteb
    from mteb.models.model_meta import ModelMeta, ScoringFunction

    if profile.mteb_name:
        try:
            meta = mteb.get_model_meta(profile.mteb_name)
        except (KeyError, ValueError):
            meta = None
        if meta is not None:
            if profile.revision and meta.revision != profile.revision:
                meta = meta.model_copy(update={"revision": profile.revision})
            return meta
    name = profile.model
    if "/" not in name or Path(name).exists():
        name = f"local/{Path(name).name}"
    return ModelMeta.create_empty(
        overwrites={
            "name": name,
            "revision": profile.revision or "no_revision_available",
            "similarity_fn_name": ScoringFunction.COSINE,
            "use_instructions": bool(profile.instructions),
            "max_tokens": profile.model_max_length,
        }
    )


def load_encoder(
    model: str = "linq-embed-mistral",
    *,
    device: str | None = None,
    dtype: str | None = None,
    max_length: int | None = None,
    policy: str | None = None,
    instructions: str | None = None,
    revision: str | None = None,
    token_budget: int | None = None,
    attn_implementation: str | None = None,
    padding_side: str | None = None,
    progress: bool = True,
) -> DecoderEncoder:
    """Load a model by profile name, hub id or local directory (or ``.gguf`` file).

    Options left as None keep the profile's setting; every effective setting is reported by
    ``encoder.settings()`` and recorded in each run.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    profile = profile_for_model(model)
    overrides: dict[str, Any] = {
        "max_length": max_length,
        "policy": policy,
        "instructions": instructions,
        "revision": revision,
        "dtype": dtype,
        "padding_side": padding_side,
    }
    profile = profile.with_overrides(**{k: v for k, v in overrides.items() if v is not None})
    get_policy(profile.policy)  # unknown policy: error before any weights are read
    instruction_set = None
    if profile.instructions and get_policy(profile.policy).instruct:
        from linq_eval.prompts.instruction_sets import load_instruction_set

        instruction_set = load_instruction_set(profile.instructions)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(profile.dtype_for(dev.type), dev)
    attn = attn_implementation or best_attn_implementation(dev)
    path, gguf_file = resolve_model_path(profile.model)
    hub_kwargs: dict[str, Any] = {}
    if gguf_file:
        hub_kwargs["gguf_file"] = gguf_file
    elif profile.revision and not Path(path).exists():
        hub_kwargs["revision"] = profile.revision
    if not gguf_file:  # (a GGUF config takes seconds to read; DecoderEncoder checks it)
        try:
            config = AutoConfig.from_pretrained(path, **hub_kwargs)
        except OSError as exc:
            raise ConfigError(
                f"Cannot load the model {profile.model!r}: {exc} (Offline, a hub model must be "
                "in the cache: run `linq-eval prefetch --model ...` where there is internet.)"
            ) from None
        check_poolable(config)  # before any weights are read
    tokenizer = AutoTokenizer.from_pretrained(path, **hub_kwargs)
    try:
        hf_model = AutoModel.from_pretrained(
            path, dtype=torch_dtype, attn_implementation=attn, **hub_kwargs
        )
    except ValueError as exc:
        if "attn_implementation" not in str(exc) and "sdpa" not in str(exc).lower():
            raise
        attn = "eager"
        hf_model = AutoModel.from_pretrained(
            path, dtype=torch_dtype, attn_implementation=attn, **hub_kwargs
        )
    hf_model.to(dev)
    encoder = DecoderEncoder(
        hf_model,
        tokenizer,
        profile,
        device=dev,
        token_budget=token_budget,
        instruction_set=instruction_set,
        progress=progress,
        attn_implementation=attn,
    )
    if token_budget is None and dev.type == "cuda":
        encoder._fit_token_budget()  # the largest budget that fits; recorded in settings()
    return encoder
