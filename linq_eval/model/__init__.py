"""A model as an mteb encoder: profiles, loading, the encoder and its forward pass.

Public modules (what the rest of linq_eval imports): ``profiles`` (``Profile``, ``PROFILES``),
``loading`` (``load_encoder``), ``encoder`` (``DecoderEncoder``), ``random_models``, ``speed``
(``SpeedOptions``), ``devices``, ``tokenization``, ``meta``, ``packed_attention``, ``check`` and
``check_record`` (``linq-eval check``). ``forward`` and ``pooling`` serve the encoder only.

Importing this package imports none of them: ``linq-eval --help`` must not load torch.
"""

__all__ = [
    "check",
    "check_record",
    "devices",
    "encoder",
    "loading",
    "meta",
    "packed_attention",
    "profiles",
    "random_models",
    "speed",
    "tokenization",
]
