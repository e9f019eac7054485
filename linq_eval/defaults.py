"""Defaults that the library and the command line share, in a module that imports nothing.

The command line writes them into its ``--help`` before torch is loaded, and the modules that
use them (``model/speed.py``, ``run/cache.py``) need torch: so they live here, once.
"""

from __future__ import annotations

DEFAULT_TOKEN_BUDGET = {"cuda": 65536, "cpu": 8192}
"""Tokens per forward pass by device type, padding included in padded mode (on CUDA
``load_encoder`` fits it to memory, up to the CUDA value)."""

DEFAULT_CHUNK_TEXTS = 2048
"""Texts per chunk the embedding cache saves at once: a kill loses at most one chunk."""

__all__ = ["DEFAULT_CHUNK_TEXTS", "DEFAULT_TOKEN_BUDGET"]
