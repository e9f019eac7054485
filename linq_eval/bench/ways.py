"""The ways of encoding the benchmark compares ours with, over the same in-memory model: the
model card's recipe as written (``naive_encode``) and ``SentenceTransformer.encode`` with
last-token pooling, what mteb's own wrapper runs (``sentence_transformer``). Both append EOS,
as the card's e5 evaluation code does: BOS + text + EOS inputs of at most ``max_length``.
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import processors

from linq_eval.errors import ConfigError


def naive_encode(
    model: torch.nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    batch_size: int,
    device: torch.device,
) -> np.ndarray:
    """The model card's recipe: fixed batches in input order, ``padding=True``, last token.

    As in the card's e5 evaluation code, the text is truncated to ``max_length - 1`` tokens
    (BOS included) and EOS appended, then the batch is padded by the tokenizer.
    """
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            list(texts[start : start + batch_size]),
            max_length=max_length - 1,
            truncation=True,
            padding=False,
        )
        batch["input_ids"] = [ids + [tokenizer.eos_token_id] for ids in batch["input_ids"]]
        batch["attention_mask"] = [mask + [1] for mask in batch["attention_mask"]]
        batch_dict = tokenizer.pad(batch, padding=True, return_tensors="pt").to(device)
        with torch.no_grad():
            outputs = model(**batch_dict)
        embeddings = _last_token_pool(outputs.last_hidden_state, batch_dict["attention_mask"])
        out.append(F.normalize(embeddings, p=2, dim=1).float().cpu())
    return torch.cat(out).numpy()


def _last_token_pool(
    last_hidden_states: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """The model card's pooling function."""
    left_padding = attention_mask[:, -1].sum() == attention_mask.shape[0]
    if left_padding:
        return last_hidden_states[:, -1]
    sequence_lengths = attention_mask.sum(dim=1) - 1
    batch_size = last_hidden_states.shape[0]
    return last_hidden_states[
        torch.arange(batch_size, device=last_hidden_states.device), sequence_lengths
    ]


def sentence_transformer(
    model: torch.nn.Module, tokenizer: Any, special: Any, max_length: int, device: torch.device
) -> Any:
    """A SentenceTransformer (Transformer, last-token Pooling, Normalize) around ``model``.

    Built without downloads: the Transformer module reads the config and a tokenizer copy
    (EOS appended by its post-processor) from a temporary folder, and takes the model already
    in memory (``sentence_transformers_private.transformer_around``).
    """
    # sentence-transformers is optional (the way is skipped without it): imported here.
    from sentence_transformers import SentenceTransformer

    from linq_eval.thirdparty import sentence_transformers_private as st_private

    Normalize, Pooling, _ = st_private.module_classes()

    st_tokenizer = with_pad_token(tokenizer)
    # sentence-transformers 6 wraps text in a tokenizer's chat template when it has one
    # (SmolLM2-Instruct's does): the inputs must stay plain text, as for the other two ways.
    st_tokenizer.chat_template = None
    with tempfile.TemporaryDirectory() as folder:
        model.config.save_pretrained(folder)
        st_tokenizer.save_pretrained(folder)
        module = st_private.transformer_around(model, folder, max_length)
    # On the tokenizer as loaded: some tokenizer classes rebuild their post-processor from
    # their own add_bos/add_eos flags when they are loaded.
    _append_special_tokens(module.tokenizer, special)
    pooling = Pooling(model.config.hidden_size, pooling_mode="lasttoken")
    return SentenceTransformer(modules=[module, pooling, Normalize()], device=str(device))


def with_pad_token(tokenizer: Any) -> Any:
    """A copy of the tokenizer that pads with EOS when it has no pad token (as Mistral's)."""
    tok = copy.deepcopy(tokenizer)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _append_special_tokens(tokenizer: Any, special: Any) -> None:
    """Make a fast tokenizer wrap every text in our BOS/EOS ids itself (for
    sentence-transformers)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ConfigError(f"{type(tokenizer).__name__} is not a fast tokenizer")
    pre = [tokenizer.convert_ids_to_tokens(i) for i in special.prefix]
    suf = [tokenizer.convert_ids_to_tokens(i) for i in special.suffix]
    backend.post_processor = processors.TemplateProcessing(
        single=[*pre, "$A", *suf],
        special_tokens=sorted(set(zip(pre + suf, [*special.prefix, *special.suffix], strict=True))),
    )


@contextlib.contextmanager
def config_values(config: Any, **values: Any) -> Iterator[None]:
    old = {key: getattr(config, key, None) for key in values}
    for key, value in values.items():
        setattr(config, key, value)
    try:
        yield
    finally:
        for key, value in old.items():
            setattr(config, key, value)


def agreement(ours: np.ndarray, other: np.ndarray) -> dict[str, float]:
    cos = (ours * other).sum(1) / np.maximum(
        np.linalg.norm(ours, axis=1) * np.linalg.norm(other, axis=1), 1e-12
    )
    return {"max_abs_diff": float(np.abs(ours - other).max()), "min_cosine": float(cos.min())}


__all__ = ["agreement", "config_values", "naive_encode", "sentence_transformer", "with_pad_token"]
