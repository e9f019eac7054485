"""``python -m linq_eval``: the same as the ``linq-eval`` command."""

from linq_eval.cli import main

__all__: list[str] = []

main()
