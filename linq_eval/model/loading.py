"""Loading a model by profile name, hub id, local directory or ``.gguf`` file, as an encoder."""

from __future__ import annotations

import dataclasses
import functools
import importlib
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoModel, AutoTokenizer

from linq_eval.errors import ConfigError
from linq_eval.model.devices import best_attn_implementation, resolve_device, resolve_dtype
from linq_eval.model.encoder import DecoderEncoder
from linq_eval.model.meta import check_poolable
from linq_eval.model.resolved import ResolvedProfile, resolve
from linq_eval.model.speed import SpeedOptions, budget_to_fit
from linq_eval.profiles import DEFAULT_PROFILE, Profile, profile_for_model


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
                f"{path} has no weights (*.safetensors, *.bin or *.gguf): did the download finish?"
            )
        return str(path), None
    return model, None


def load_encoder(
    model: str | Profile | ResolvedProfile = DEFAULT_PROFILE,
    *,
    device: str | None = None,
    token_budget: int | None = None,
    attn_implementation: str | None = None,
    progress: bool = True,
    speed: SpeedOptions | None = None,
    **given: Any,
) -> DecoderEncoder:
    """Load a model by profile name, hub id or local directory (or ``.gguf`` file), or from a
    ``Profile`` or an already ``ResolvedProfile`` (a run's: its names are not looked up again).

    ``given``: the profile settings a user may change (``profiles.GIVEN_OPTIONS``: max_length,
    dtype, policy, instructions, revision, padding_side); None keeps the profile's. Every
    effective setting is reported by ``encoder.settings()`` and recorded in each run.
    ``token_budget`` is ``speed``'s (given alone for short); None on CUDA: the largest that
    fits in memory.
    """
    base = model.profile if isinstance(model, ResolvedProfile) else profile_for_model(model)
    profile = base.with_given(**given)
    if isinstance(model, ResolvedProfile) and profile == model.profile:
        resolved = model  # a run's: its names are not looked up again
    else:  # names resolved once, here; an unknown policy: error before any weights
        resolved = resolve(profile)
    dev = resolve_device(device)
    attn = attn_implementation or best_attn_implementation(dev)
    hf_model, tokenizer, attn = _load_weights(
        profile, resolve_dtype(profile.dtype_for(dev.type), dev), attn
    )
    hf_model.to(dev)
    speed = speed or SpeedOptions()
    if token_budget is not None:
        speed = dataclasses.replace(speed, token_budget=token_budget)
    encoder = DecoderEncoder(
        hf_model,
        tokenizer,
        resolved,
        device=dev,
        speed=speed,
        progress=progress,
        attn_implementation=attn,
    )
    if budget_to_fit(speed.token_budget, dev):
        encoder.fit_token_budget()  # the largest budget that fits; recorded in settings()
    return encoder


def _load_weights(profile: Profile, torch_dtype: Any, attn: str) -> tuple[Any, Any, str]:
    """``(model, tokenizer, attention implementation)``; the config is checked first."""
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
    load = functools.partial(AutoModel.from_pretrained, path, dtype=torch_dtype, **hub_kwargs)
    try:
        return load(attn_implementation=attn), tokenizer, attn
    except ValueError as exc:
        if "attn_implementation" not in str(exc) and "sdpa" not in str(exc).lower():
            raise
    return load(attn_implementation="eager"), tokenizer, "eager"


__all__ = ["load_encoder", "resolve_model_path"]
