"""The ``linq-eval`` command line: a thin typer layer, one module per command group, each command
calling one library function.

Run ``linq-eval --help`` for the list of commands and ``linq-eval COMMAND --help`` for examples.

Imports: the command modules import light modules at the top, and the library modules that load
torch, transformers or mteb (model loading, runner, bench, check, the encoder's helpers) inside
the command that needs them. Every command module is imported to build the command list, so a
top-level heavy import would make ``linq-eval --help`` (and every light command: profiles,
instructions, table) wait seconds for torch and mteb; ``tests/test_cli_imports.py`` keeps this so.
"""

from __future__ import annotations

from linq_eval.cli import bench, check, explain, instructions, models, results, run  # noqa: F401
from linq_eval.cli.app import app, main

__all__ = ["app", "main"]
