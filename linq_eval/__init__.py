"""linq-eval: an evaluation harness for instruction-tuned decoder embedding models.

Importing this package is cheap: torch, transformers and mteb are loaded only by the
functions that need them (the GPU benchmark machine has no mteb).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from linq_eval.profiles import DEFAULT_PROFILE

__version__ = "0.1.0"

if TYPE_CHECKING:
    from linq_eval.model.encoder import DecoderEncoder


def load_encoder(model: str = DEFAULT_PROFILE, **options: Any) -> DecoderEncoder:
    """Build an mteb-compatible encoder from a profile name, a hub id or a local directory.

    Options override the profile's fields (``max_length``, ``dtype``, ``policy``,
    ``instructions``, ``device``, ``revision``, ``token_budget`` ...).
    """
    from linq_eval.model.loading import load_encoder as _load  # torch: keeps the package light

    return _load(model, **options)


__all__ = ["__version__", "load_encoder"]
