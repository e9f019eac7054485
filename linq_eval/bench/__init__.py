"""The speed benchmark (``linq-eval bench``), through the encoder's public API.

Public modules (what the rest of linq_eval imports): ``throughput`` (``run_bench``: three ways
on the same texts), ``ablation`` (one speed option at a time). ``ways``, ``lengthmix`` and
``measure`` serve those two.
"""

__all__ = ["ablation", "throughput"]
