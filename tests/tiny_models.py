"""Tiny randomly initialised decoders of each profiled architecture, saved the way their hub
repositories are (a sentence-transformers folder: weights, tokenizer, last-token pooling,
normalisation), so that mteb's own implementation of a model loads them from a local path.

Mistral models get Mistral-7B's real tokenizer (mistral-common's file). Qwen2/Qwen3 models get a
stand-in: the same vocabulary with Qwen's special-token conventions (no BOS, ``<|endoftext|>``
as EOS and pad), which is enough because what is compared is what each implementation does with
the text, not the vocabulary.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from linq_eval.model.random_models import mistral_tokenizer
from linq_eval.profiles import RANDOM_MISTRALS

TINY_SIZES: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
}
"""Hidden size 64, 2 layers: the tiny size of every architecture (Mistral's is
RANDOM_MISTRALS['tiny'])."""

QWEN_EOS = "<|endoftext|>"
"""Qwen's end-of-text token: EOS and pad of Qwen3-Embedding and gte-Qwen2."""


def tiny_model(architecture: str, seed: int = 0) -> Any:
    """A randomly initialised ``MistralModel``, ``Qwen2Model`` or ``Qwen3Model`` (fp32)."""
    import transformers

    torch.manual_seed(seed)
    if architecture == "mistral":
        config = transformers.MistralConfig(**RANDOM_MISTRALS["tiny"])
        return transformers.MistralModel(config).eval()
    vocab = len(mistral_tokenizer()) + 1  # the stand-in's vocabulary and <|endoftext|>
    sizes = {**TINY_SIZES, "vocab_size": vocab, "tie_word_embeddings": False}
    if architecture == "qwen2":
        return transformers.Qwen2Model(transformers.Qwen2Config(**sizes)).eval()
    if architecture == "qwen3":
        config = transformers.Qwen3Config(**sizes, head_dim=16)
        return transformers.Qwen3Model(config).eval()
    raise ValueError(f"no tiny {architecture!r}")


def qwen_stand_in_tokenizer(append_eos: bool) -> Any:
    """Mistral-7B's vocabulary with Qwen's conventions: no BOS, ``<|endoftext|>`` the EOS and
    pad token; ``append_eos``: the post-processor ends every input with it (as Qwen3-Embedding's
    tokenizer.json does); otherwise it adds nothing (as gte-Qwen2's does)."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    backend = mistral_tokenizer().backend_tokenizer
    backend.add_special_tokens([QWEN_EOS])
    eos_id = backend.token_to_id(QWEN_EOS)
    if append_eos:
        backend.post_processor = processors.TemplateProcessing(
            single=f"$A {QWEN_EOS}",
            pair=f"$A {QWEN_EOS} $B {QWEN_EOS}",
            special_tokens=[(QWEN_EOS, eos_id)],
        )
    else:
        backend.post_processor = processors.TemplateProcessing(single="$A", pair="$A $B")
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token=QWEN_EOS, pad_token=QWEN_EOS, unk_token="<unk>"
    )


def save_sentence_transformer(
    model: Any, tokenizer: Any, folder: Path, tokenizer_config: dict[str, Any] | None = None
) -> Path:
    """``folder`` as a hub embedding repository: weights, tokenizer (``tokenizer_config``
    merged into its config), Transformer → last-token Pooling → Normalize."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    raw = folder.parent / f"{folder.name}.raw"
    model.save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    transformer = Transformer(str(raw), max_seq_length=4096)
    pooling = Pooling(model.config.hidden_size, pooling_mode="lasttoken")
    SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu").save(str(folder))
    shutil.rmtree(raw)
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config.update(tokenizer_config or {})
    path.write_text(json.dumps(config))
    return folder


def hub_snapshot(cache: Path, repo_id: str, revision: str, folder: Path) -> Path:
    """Copy ``folder`` into a hub cache (``HF_HUB_CACHE`` layout) as ``repo_id`` at
    ``revision``, so that offline loading by hub id and pinned revision finds it."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / revision)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return repo
