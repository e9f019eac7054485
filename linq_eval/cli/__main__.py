"""``python -m linq_eval.cli``: the same as the ``linq-eval`` command."""

from linq_eval.cli.app import main

__all__: list[str] = []

main()
