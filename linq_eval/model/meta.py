"""What a model is to mteb (its ModelMeta), and whether this encoder can pool it at all."""

from __future__ import annotations

import contextlib
import inspect
from typing import Any

import torch

from linq_eval.errors import ConfigError
from linq_eval.profiles import UNVERSIONED, Profile


def build_model_meta(profile: Profile) -> Any:
    """mteb's ModelMeta for a profile: mteb's own for models it registers, else a new one."""
    # mteb is imported here, not at the top: the GPU benchmark machine has no mteb, and the
    # encoder needs a ModelMeta only when it is evaluated through mteb.
    import mteb
    from mteb.models import ModelMeta

    from linq_eval.thirdparty.mteb_private import cosine_scoring

    meta = None
    with contextlib.suppress(KeyError, ValueError):  # a name this mteb does not know
        meta = mteb.get_model_meta(profile.mteb_name) if profile.mteb_name else None
    if meta is not None:
        if profile.revision and meta.revision != profile.revision:
            meta = meta.model_copy(update={"revision": profile.revision})
        return meta
    return ModelMeta.create_empty(
        overwrites={
            "name": profile.mteb_model_name,
            "revision": profile.revision or UNVERSIONED,
            "similarity_fn_name": cosine_scoring(),
            "use_instructions": bool(profile.instructions),
            "max_tokens": profile.model_max_length,
        }
    )


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


__all__ = ["build_model_meta", "check_poolable"]
