"""The encoder: mteb's EncoderProtocol for decoder embedding models (and mean-pooled encoders).

What it guarantees, for every input:
- the task instruction (``"Instruct: {instruction}\\nQuery: "``) exactly where the policy says,
  never mteb's generic fallback prompt: a task without an instruction is an error;
- BOS first and EOS last, also after truncation (see linq_eval.tokenization);
- last-token pooling that is right under left and right padding (the position of the last
  real token is read from the attention mask, not assumed);
- length-sorted batches under a token budget, results returned in input order, identical
  texts encoded once; the same text gives the same embedding whatever its batch holds;
- float32 numpy output, L2-normalised where the policy says, checked for NaN/inf.

Only torch and transformers are imported at module load: the GPU benchmark machine has no
mteb, which is imported lazily where mteb objects are needed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from linq_eval.errors import ConfigError, LinqEvalError
from linq_eval.policies import Policy, get_policy
from linq_eval.profiles import Profile, profile_for_model
from linq_eval.tokenization import SpecialTokens, special_tokens_for, tokenize

logger = logging.getLogger(__name__)

MIN_MAX_LENGTH = 8
DEFAULT_TOKEN_BUDGET = {"cuda": 65536, "cpu": 8192}
MAX_BATCH_ROWS = 1024


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
        if getattr(model.config, "is_encoder_decoder", False):
            raise ConfigError(
                f"{type(model).__name__} is an encoder-decoder model: this encoder pools "
                "decoder-only or encoder-only models"
            )
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
            from linq_eval.instructions import load_instruction_set

            self.instruction_set = load_instruction_set(profile.instructions)
        self._model_meta = model_meta
        self.progress = progress
        self.stats = EncodeStats()

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
        }

    def prompt_hash(self, task_names: Sequence[str], task_types: dict[str, str]) -> str:
        """A short hash of every prefix these tasks' queries and documents receive."""
        prompts = {
            name: {
                pt: self.prompt_for(name, task_types[name], pt) for pt in ("query", "document")
            }
            for name in sorted(task_names)
        }
        blob = json.dumps(prompts, sort_keys=True, ensure_ascii=False).encode()
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
        self.stats.empty += sum(1 for t in texts if not t.strip())
        unique: dict[str, int] = {}
        inverse = np.fromiter(
            (unique.setdefault(prefix + t, len(unique)) for t in texts), dtype=np.int64,
            count=len(texts),
        )
        full_texts = list(unique)
        tokenized = tokenize(self.tokenizer, full_texts, self.special, self.profile.max_length)
        self.stats.truncated += tokenized.n_truncated
        emb = self._embed_ids(tokenized.ids, progress=self.progress if progress is None else progress,
                              label=label or where)
        if not np.isfinite(emb).all():
            bad_unique = int(np.where(~np.isfinite(emb).all(1))[0][0])
            row = int(np.where(inverse == bad_unique)[0][0])
            raise EncodingError(f"{where}, row {row}: the embedding contains NaN or inf")
        if normalize:
            norms = np.linalg.norm(emb, axis=1, keepdims=True)
            emb = emb / np.maximum(norms, 1e-12)
        out = emb[inverse]
        elapsed = time.perf_counter() - started
        n_tokens = sum(len(ids) for ids in tokenized.ids)
        self.stats.texts += len(texts)
        self.stats.unique_texts += len(full_texts)
        self.stats.tokens += n_tokens
        self.stats.seconds += elapsed
        if label:
            task = self.stats.per_task.setdefault(label, {"texts": 0, "tokens": 0, "seconds": 0.0})
            task["texts"] += len(texts)
            task["tokens"] += n_tokens
            task["seconds"] += elapsed
        return out.astype(np.float32, copy=False)

    def _embed_ids(self, ids: list[list[int]], *, progress: bool, label: str) -> np.ndarray:
        """Embed token id lists: longest first, batches under the token budget."""
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        dim = self.model.config.hidden_size
        out = np.empty((len(ids), dim), dtype=np.float32)
        bar = _progress_bar(len(ids), label, enabled=progress)
        done_tokens, t0 = 0, time.perf_counter()
        for batch in self._batches(order, ids):
            vectors = self._forward_with_retry([ids[i] for i in batch])
            out[batch] = vectors
            done_tokens += sum(len(ids[i]) for i in batch)
            if bar is not None:
                bar.update(len(batch))
                rate = done_tokens / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix_str(f"{rate:,.0f} tok/s", refresh=False)
        if bar is not None:
            bar.close()
        return out

    def _batches(self, order: list[int], ids: list[list[int]]) -> Iterable[list[int]]:
        """Consecutive runs of ``order`` whose padded size fits the token budget."""
        batch: list[int] = []
        width = 0
        for i in order:
            n = len(ids[i])
            new_width = max(width, n)
            if batch and (
                new_width * (len(batch) + 1) > self.token_budget or len(batch) >= MAX_BATCH_ROWS
            ):
                yield batch
                batch, new_width = [], n
            batch.append(i)
            width = new_width
        if batch:
            yield batch

    def _forward_with_retry(self, batch: list[list[int]]) -> np.ndarray:
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
            return np.concatenate(
                [self._forward_with_retry(batch[:half]), self._forward_with_retry(batch[half:])]
            )

    @torch.inference_mode()
    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        """One padded forward pass and pooling; returns float32 [len(batch), dim]."""
        width = max(len(x) for x in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        left = self.profile.padding_side == "left"
        for row, seq in enumerate(batch):
            if left:
                input_ids[row, width - len(seq) :] = torch.tensor(seq)
                mask[row, width - len(seq) :] = 1
            else:
                input_ids[row, : len(seq)] = torch.tensor(seq)
                mask[row, : len(seq)] = 1
        self.stats.padded_tokens += input_ids.numel()
        input_ids = input_ids.to(self.device, non_blocking=True)
        mask = mask.to(self.device, non_blocking=True)
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": mask}
        if self.profile.pooling == "last":
            # Real positions 0..n-1 for every row, whichever side is padded.
            kwargs["position_ids"] = (mask.cumsum(1) - 1).clamp(min=0)
        hidden = self.model(**kwargs).last_hidden_state
        pooled = pool(hidden, mask, self.profile.pooling)
        return pooled.float().cpu().numpy()

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


def build_model_meta(profile: Profile) -> Any:
    """mteb's ModelMeta for a profile: mteb's own for models it registers, else a new one."""
    import mteb
    from mteb.models.model_meta import ModelMeta

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
            "similarity_fn_name": "cosine",
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
    from transformers import AutoModel, AutoTokenizer

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
        from linq_eval.instructions import load_instruction_set

        instruction_set = load_instruction_set(profile.instructions)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(profile.dtype, dev)
    attn = attn_implementation or best_attn_implementation(dev)
    path, gguf_file = resolve_model_path(profile.model)
    hub_kwargs: dict[str, Any] = {}
    if gguf_file:
        hub_kwargs["gguf_file"] = gguf_file
    elif profile.revision and not Path(path).exists():
        hub_kwargs["revision"] = profile.revision
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
    return DecoderEncoder(
        hf_model,
        tokenizer,
        profile,
        device=dev,
        token_budget=token_budget,
        instruction_set=instruction_set,
        progress=progress,
        attn_implementation=attn,
    )
