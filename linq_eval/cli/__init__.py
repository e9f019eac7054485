"""The ``linq-eval`` command line: a thin typer layer, one module per command group, each command
calling one library function.

Run ``linq-eval --help`` for the list of commands and ``linq-eval COMMAND --help`` for examples.
"""

from __future__ import annotations

from linq_eval.cli import bench, check, instructions, models, results, run  # noqa: F401 - registers
from linq_eval.cli.app import app, main

__all__ = ["app", "main"]
