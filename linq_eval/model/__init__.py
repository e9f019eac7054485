"""A model as an mteb encoder: loading, the encoder and its forward pass (ARCHITECTURE.md,
``model/``). The profiles themselves are data one floor below (``linq_eval.profiles``), which
reading results needs without a model.

Importing this package imports none of its modules: ``linq-eval --help`` must not load torch.
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
