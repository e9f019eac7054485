"""The speed benchmark (``linq-eval bench``), through the encoder's public API: ``throughput``
and ``ablation``, which ``ways``, ``lengthmix`` and ``measure`` serve."""

__all__ = ["ablation", "throughput"]
