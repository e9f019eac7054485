"""Running the ``linq-eval`` command line in-process, for tests."""

from __future__ import annotations

import sys

import pytest


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``linq-eval ARGS`` in-process through cli.main (exit code 2 on user errors);
    returns (exit code, stdout, stderr)."""
    from linq_eval import cli

    monkeypatch.setattr(sys, "argv", ["linq-eval", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    out = capsys.readouterr()
    code = exc.value.code
    return (0 if code is None else int(code)), out.out, out.err
