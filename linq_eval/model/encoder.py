"""The encoder: mteb's EncoderProtocol for decoder embedding models (and mean-pooled encoders).

What it guarantees for every input (the instruction exactly where the policy says, BOS first and
EOS last, pooling right under either padding side, token-budget batches returned in input
order, float32 output checked for NaN/inf) is README.md's "What the encoder guarantees". How
fast it computes is declared in ``SpeedOptions``; the step from distinct texts to raw vectors
can be replaced per call (``encode_texts(..., embed=...)``): that is how
``linq_eval.run.cached_encoder.CachedEncoder`` wraps an encoder from outside.

Only torch and transformers are needed at import: the GPU benchmark machine has no mteb,
which is imported only where mteb objects are needed (ModelMeta, task metadata).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from linq_eval.defaults import DEFAULT_TOKEN_BUDGET
from linq_eval.errors import ConfigError, EncodingError
from linq_eval.model import packed_attention
from linq_eval.model.devices import resolve_device
from linq_eval.model.forward import ModelForward
from linq_eval.model.meta import build_model_meta, check_poolable
from linq_eval.model.pooling import normalised_tensor
from linq_eval.model.resolved import ResolvedProfile, resolve
from linq_eval.model.speed import SpeedOptions, fit_token_budget
from linq_eval.model.tokenization import (
    SpecialTokens,
    TokenizedBatch,
    needs_repair,
    special_tokens_for,
    tokenize,
)
from linq_eval.profiles import MIN_MAX_LENGTH, POOLING_CHOICES, Profile
from linq_eval.prompts import builder
from linq_eval.prompts.instruction_sets import InstructionSet
from linq_eval.prompts.policies import Policy
from linq_eval.provenance import mteb_version
from linq_eval.run_record import ScoreSettings
from linq_eval.thirdparty.transformers_private import attn_implementation as config_attention

_logger = logging.getLogger(__name__)

_MAX_BATCH_ROWS = 1024
_MAX_PACKED_ROWS = 16384


@dataclass
class EncodeStats:
    """Counters over the encoder's lifetime."""

    texts: int = 0
    unique_texts: int = 0
    tokens: int = 0
    truncated: int = 0
    empty: int = 0
    repaired: int = 0
    """Input texts with lone surrogates, encoded with U+FFFD in their place."""
    oom_retries: int = 0
    forwarded_tokens: int = 0
    """Tokens through the model so far, counted after every batch (``tokens`` is counted per
    encode call): what a progress view reads while a long call runs."""
    per_task: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class Embedded:
    """Raw (not normalised) float32 embeddings of distinct input texts, and what it took."""

    embeddings: np.ndarray
    tokens: int = 0
    """Tokens run through the model, special tokens included."""
    truncated: int = 0
    """Texts cut at max_length."""
    counts: dict[str, int] = field(default_factory=dict)
    """Further per-task counters (a cache's ``encoded_texts`` and ``cached_texts``)."""


EmbedStep = Callable[..., Embedded]
"""``step(texts, *, progress, label) -> Embedded``: distinct full input texts to raw vectors."""


def budget_batches(
    order: Sequence[int], lengths: Sequence[int], token_budget: int, *, packed: bool
) -> Iterator[list[int]]:
    """Consecutive runs of ``order`` whose computed size fits the token budget.

    The computed size is rows x longest row for padded batches, and the sum of the lengths
    for packed (varlen) ones, which compute no padding.
    """
    max_rows = _MAX_PACKED_ROWS if packed else _MAX_BATCH_ROWS
    batch: list[int] = []
    width = total = 0
    for i in order:
        n = lengths[i]
        new_width = max(width, n)
        size = total + n if packed else new_width * (len(batch) + 1)
        if batch and (size > token_budget or len(batch) >= max_rows):
            yield batch
            batch, new_width, total = [], n, 0
        batch.append(i)
        width = new_width
        total += n
    if batch:
        yield batch


class DecoderEncoder:
    """An mteb encoder for (instruction-tuned) embedding models.

    Build it with :func:`linq_eval.model.loading.load_encoder`; tests and benchmarks may pass a
    ready model and tokenizer directly.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        profile: Profile | ResolvedProfile,
        *,
        device: torch.device | str | None = None,
        speed: SpeedOptions | None = None,
        instruction_set: InstructionSet | None = None,
        progress: bool = True,
        attn_implementation: str | None = None,
    ) -> None:
        if isinstance(profile, ResolvedProfile):
            if instruction_set is not None:
                raise ConfigError(
                    "A resolved profile carries its instruction set: give it to resolve()"
                )
            self.resolved = profile
        else:  # a bare profile: its names resolved once, here
            self.resolved = resolve(profile, instruction_set)
        profile = self.resolved.profile
        self.profile: Profile = profile
        self.policy: Policy = self.resolved.policy
        self.device = resolve_device(device)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.dtype = next(model.parameters()).dtype
        self.attn_implementation = attn_implementation or config_attention(model.config)
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
        if profile.pooling not in POOLING_CHOICES:
            raise ConfigError(
                f"Unknown pooling {profile.pooling!r}; valid: {', '.join(POOLING_CHOICES)}"
            )
        check_poolable(model.config, model)
        self.special: SpecialTokens = special_tokens_for(tokenizer, profile.eos, profile.bos)
        pad = getattr(tokenizer, "pad_token_id", None)
        pad = getattr(tokenizer, "eos_token_id", None) if pad is None else pad
        self.pad_id = int(pad) if pad is not None else 0
        self.speed = (speed or SpeedOptions()).on(self.device, profile.max_length)
        """The speed options as they apply on this device."""
        if self.speed.token_budget < profile.max_length:  # the longest input must fit a batch
            raise ConfigError(
                f"token_budget={self.speed.token_budget} is smaller than max_length="
                f"{profile.max_length}: the longest input would not fit in a batch"
            )
        self.token_budget: int = self.speed.token_budget
        """Tokens per forward pass now: the option's, halved on out-of-memory, or fitted to
        the GPU's memory by ``fit_token_budget``."""
        self.instruction_set: InstructionSet | None = self.resolved.instruction_set
        self._model_meta: Any = None
        self.progress = progress
        self.stats = EncodeStats()
        self._forward = ModelForward(
            model, profile, self.device, self.speed, self.special, self.pad_id
        )

    def with_speed(self, speed: SpeedOptions) -> DecoderEncoder:
        """A new encoder over the same model, tokenizer, profile and instructions, with other
        speed options (and its own counters)."""
        return DecoderEncoder(
            self.model,
            self.tokenizer,
            self.resolved,
            device=self.device,
            speed=speed,
            progress=self.progress,
            attn_implementation=self.attn_implementation,
        )

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
        embed: EmbedStep | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """Encode an mteb DataLoader of batches (``batch["text"]``) for one task.

        ``embed``: the step from distinct input texts to raw vectors (default
        ``embed_unique``), as in ``encode_texts``.
        """
        texts = [text for batch in inputs for text in batch["text"]]
        ptype = getattr(prompt_type, "value", prompt_type)
        task_name, task_type = task_metadata.name, task_metadata.type
        prefix = self.prompt_for(task_name, task_type, ptype)
        where = f"task {task_name}, subset {hf_subset}, split {hf_split}"
        # Truncation cuts the text after the prompt: a prompt that fills max_length would give
        # every input of the task the same embedding.
        n = len(self.tokenizer(prefix, add_special_tokens=False)["input_ids"]) if prefix else 0
        specials = len(self.special.prefix) + len(self.special.suffix)
        if prefix and self.profile.max_length - specials - n < 1:
            raise ConfigError(
                f"{where}: the instruction prompt takes {n} tokens, which leaves no room for "
                f"text within max_length={self.profile.max_length}; raise --max-length"
            )
        show = kwargs.get("show_progress_bar", self.progress)
        return self.encode_texts(
            texts,
            prefix=prefix,
            normalize=self.policy.normalise(task_type),
            where=where,
            progress=bool(show),
            label=task_name,
            embed=embed,
        )

    def similarity(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        """Cosine similarity matrix (what the card's scores are, /100)."""
        return normalised_tensor(embeddings1) @ normalised_tensor(embeddings2).T

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        """Cosine similarity of corresponding rows."""
        return (normalised_tensor(embeddings1) * normalised_tensor(embeddings2)).sum(-1)

    # ----------------------------------------------------------------- prompts
    def prompt_for(self, task_name: str, task_type: str, prompt_type: str | None) -> str:
        """The exact prefix of an input of this task and prompt type ('' when none)."""
        return builder.prompt_for(
            self.policy,
            self.instruction_set,
            self.profile.template,
            task_name,
            task_type,
            prompt_type,
        )

    def score_settings(self, prompt_hash: str | None = None) -> ScoreSettings:
        """Everything about this encoder that decides an embedding or a score (the prompt
        hash is per task set: ``prompt_hash(task_names)``)."""
        meta = self.mteb_model_meta
        iset = self.instruction_set
        return ScoreSettings(
            model=getattr(meta, "name", None) or self.profile.model,
            revision=getattr(meta, "revision", None) or self.profile.revision,
            model_source=self.profile.model,
            dtype=str(self.dtype).replace("torch.", ""),
            max_length=self.profile.max_length,
            pooling=self.profile.pooling,
            eos=self.profile.eos,
            bos=self.profile.bos,
            special_tokens={
                "prefix": list(self.special.prefix),
                "suffix": list(self.special.suffix),
            },
            padding_side=self.profile.padding_side,
            attn_implementation=self.attn_implementation,
            policy=self.policy.name,
            unnormalised_task_types=self.policy.unnormalised_types,
            template=builder.effective_template(self.policy, self.profile.template, iset),
            instructions=getattr(iset, "name", None),
            instructions_version=getattr(iset, "version", None),
            prompt_hash=prompt_hash,
            embedding_precision="float32",
            mteb_version=mteb_version(),
        )

    def settings(self) -> dict[str, Any]:
        """The run record's settings: the score settings a whole run shares, then how this
        encoder computes (profile, device, token budget, speed options)."""
        return {**self.score_settings().run_record(), **self.run_details()}

    def run_details(self) -> dict[str, Any]:
        """What the run record keeps beside the score settings: what they were made from
        (the profile, the instruction file) and what changes speed, not scores."""
        iset = self.instruction_set
        return {
            "profile": self.profile.name,
            "instructions_file": str(iset.path) if iset is not None and iset.path else None,
            "device": str(self.device),
            "token_budget": self.token_budget,
            "speed": self.speed_settings(),
        }

    def task_prompts(self, task_names: Sequence[str]) -> dict[str, dict[str, str]]:
        """The exact prefix each task's query side and document side receive (needs mteb)."""
        return builder.task_prompts(
            task_names, self.policy, self.instruction_set, self.profile.template
        )

    def prompt_hash(self, task_names: Sequence[str]) -> str:
        """A short hash of every prefix these tasks' inputs receive under this encoder."""
        return builder.tasks_prompt_hash(
            task_names, self.policy, self.instruction_set, self.profile.template
        )

    # ----------------------------------------------------------------- speed
    def speed_settings(self) -> dict[str, Any]:
        """The speed options in use, for run records (they change speed, not scores): the
        attention mode as chosen, and the token budget as it is now."""
        return {
            **asdict(self.speed),
            "attention": self.attention_mode(),
            "attention_note": self._forward.attention_note,
            "token_budget": self.token_budget,
        }

    def attention_mode(self) -> str:
        """``padded`` or ``varlen-<kernel>``: the option's, or under ``auto`` the fastest
        packed kernel that passes its self-check, chosen the first time it is needed."""
        return self._forward.attention_mode()

    def fit_token_budget(self, limit: int = DEFAULT_TOKEN_BUDGET["cuda"]) -> int:
        """CUDA: set the token budget to the largest that fits in memory, up to ``limit``
        (linq_eval.model.speed.fit_token_budget). CPU: the budget is left as it is."""
        if self.device.type == "cuda":
            self.token_budget = fit_token_budget(
                self._forward.probe, self.device, self.profile.max_length, limit=limit
            )
        return self.token_budget

    # ----------------------------------------------------------------- encoding
    def tokenize(self, texts: Sequence[str]) -> TokenizedBatch:
        """Token ids of full input texts: BOS + text + EOS, at most max_length, unpadded."""
        return tokenize(self.tokenizer, texts, self.special, self.profile.max_length)

    def encode_texts(
        self,
        texts: Sequence[Any],
        *,
        prefix: str = "",
        normalize: bool = True,
        where: str = "input",
        progress: bool | None = None,
        label: str | None = None,
        embed: EmbedStep | None = None,
    ) -> np.ndarray:
        """Embed ``texts`` (each prefixed with ``prefix``); float32, in input order.

        ``embed`` turns the distinct full texts into raw vectors (default ``embed_unique``).
        """
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise EncodingError(
                    f"{where}, row {row}: expected a string, got {type(text).__name__} "
                    f"({text!r:.80})"
                )
        started = time.perf_counter()
        # Whitespace-only text is embedded as empty text, the prompt plus EOS (mteb strips
        # corpus text the same way); lone surrogates are encoded as U+FFFD (tokenization).
        edge = {
            "empty": sum(1 for t in texts if not t.strip()),
            "repaired": sum(1 for t in texts if needs_repair(t)),
        }
        self.stats.empty += edge["empty"]
        self.stats.repaired += edge["repaired"]
        unique: dict[str, int] = {}
        inverse = np.fromiter(
            (unique.setdefault(prefix + (t if t.strip() else ""), len(unique)) for t in texts),
            dtype=np.int64,
            count=len(texts),
        )
        show = self.progress if progress is None else progress
        done = (embed or self.embed_unique)(list(unique), progress=show, label=label or where)
        emb = done.embeddings
        _check_finite(emb, inverse, where, self.dtype)
        if normalize:
            emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        done.counts = {**done.counts, **edge, "truncated": done.truncated}
        self.stats.texts += len(texts)
        self.stats.unique_texts += len(unique)
        self.stats.tokens += done.tokens
        self.stats.truncated += done.truncated
        if label:
            task = self.stats.per_task.setdefault(label, {"texts": 0, "tokens": 0, "seconds": 0.0})
            task["texts"] += len(texts)
            task["unique_texts"] = task.get("unique_texts", 0) + len(unique)
            task["tokens"] += done.tokens
            task["seconds"] += time.perf_counter() - started
            for key, value in done.counts.items():
                task[key] = task.get(key, 0) + value
        return emb[inverse].astype(np.float32, copy=False)

    def embed_unique(self, texts: Sequence[str], *, progress: bool, label: str) -> Embedded:
        """Raw float32 embeddings of distinct full input texts, in order: tokenized, then
        ``embed_ids``."""
        tokenized = self.tokenize(texts)
        emb = self.embed_ids(tokenized.ids, progress=progress, label=label)
        return Embedded(emb, sum(map(len, tokenized.ids)), tokenized.n_truncated)

    def embed_ids(self, ids: list[list[int]], *, progress: bool, label: str) -> np.ndarray:
        """Raw float32 embeddings of token id lists: longest first, batches under the token
        budget, returned in input order.

        On CUDA the host runs one batch ahead: batch i+1 is queued on the GPU before the
        embeddings of batch i are copied back, so the GPU does not wait for Python in between.
        """
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        lengths = [len(x) for x in ids]
        out = np.empty((len(ids), self.model.config.hidden_size), dtype=np.float32)
        bar = None
        if progress and ids:
            bar = tqdm(
                total=len(ids), desc=f"encode {label}", unit="text", leave=False, dynamic_ncols=True
            )
        done_tokens, t0 = 0, time.perf_counter()
        pending: list[tuple[list[int], Any]] = []
        ahead = 1 if self.device.type == "cuda" else 0

        def collect(keep: int) -> None:
            nonlocal done_tokens
            while len(pending) > keep:
                rows, vectors = pending.pop(0)
                out[rows] = _as_numpy(vectors)
                batch_tokens = sum(lengths[i] for i in rows)
                done_tokens += batch_tokens
                self.stats.forwarded_tokens += batch_tokens
                if bar is not None:
                    bar.update(len(rows))
                    rate = done_tokens / max(time.perf_counter() - t0, 1e-9)
                    bar.set_postfix_str(f"{rate:,.0f} tok/s", refresh=False)

        packed = self.attention_mode() != packed_attention.PADDED
        for batch in budget_batches(order, lengths, self.token_budget, packed=packed):
            pending.append((batch, self._forward_with_retry([ids[i] for i in batch])))
            collect(ahead)
        collect(0)
        if bar is not None:
            bar.close()
        return out

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
            _logger.warning("CUDA out of memory: token budget halved to %d", self.token_budget)
            half = len(batch) // 2
            first = self._forward_with_retry(batch[:half])
            second = self._forward_with_retry(batch[half:])
            if isinstance(first, torch.Tensor) and isinstance(second, torch.Tensor):
                return torch.cat([first, second])
            return np.concatenate([_as_numpy(first), _as_numpy(second)])


def _check_finite(emb: np.ndarray, inverse: np.ndarray, where: str, dtype: torch.dtype) -> None:
    """Raise naming the first input row whose (unique) embedding holds NaN or inf; in float16
    the likely cause (overflow) and the way out."""
    if not np.isfinite(emb).all():
        bad_unique = int(np.where(~np.isfinite(emb).all(1))[0][0])
        row = int(np.where(inverse == bad_unique)[0][0])
        hint = (
            " (float16 overflow: activations beyond float16's range of 65504; rerun with "
            "--dtype bfloat16, which keeps float32's range, or --dtype float32)"
            if dtype == torch.float16
            else ""
        )
        raise EncodingError(f"{where}, row {row}: the embedding contains NaN or inf{hint}")


def _as_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.cpu().numpy() if isinstance(x, torch.Tensor) else x


__all__ = ["DecoderEncoder", "EmbedStep", "Embedded", "EncodeStats", "budget_batches"]
