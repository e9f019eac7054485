"""A model as an mteb encoder: profiles, loading, the encoder and its forward pass.

Public modules (what the rest of linq_eval imports; the profiles themselves are data on the floor
below, ``linq_eval.profiles``, which reading results needs without a model): ``loading``
(``load_encoder``), ``encoder`` (``DecoderEncoder``), ``random_models``, ``speed``
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
    "random_models",
    "speed",
    "tokenization",
]
