"""The typer application, the console entry point and the option parsing every command shares."""

from __future__ import annotations

import sys

import typer

from linq_eval.errors import LinqEvalError
from linq_eval.provenance import extra_providing

app = typer.Typer(
    name="linq-eval",
    help="Evaluate instruction-tuned decoder embedding models (Linq-Embed-Mistral) on MTEB.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)


class ListOptionsCommand(typer.core.TyperCommand):
    """Lets ``--tasks A B C`` stand for ``--tasks A --tasks B --tasks C`` (give RUN first);
    the same for ``--task-types`` and ``--candidates``."""

    list_options = ("--tasks", "--task-types", "--candidates")

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        expanded: list[str] = []
        current: str | None = None
        for arg in args:
            if arg.startswith("-"):
                current = arg if arg in self.list_options else None
                expanded.append(arg)
            elif current is not None and expanded[-1] != current:
                expanded += [current, arg]
            else:
                expanded.append(arg)
        return super().parse_args(ctx, expanded)


class RunCommand(ListOptionsCommand):
    """``--tasks A B``, ``--task-types A B`` and ``--devices 0 1`` take several values; the
    arguments as given are kept for relaunching under torchrun."""

    list_options = ("--tasks", "--task-types", "--devices")

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        ctx.meta["linq_eval_args"] = list(args)
        return super().parse_args(ctx, args)


EXIT_FAIL, _EXIT_UNUSABLE = 1, 2
"""The exit codes of every command: 0 pass; 1 a regression or a task that was measured and
failed; 2 anything unusable (bad input, damaged evidence, unwritable output)."""


def main() -> None:
    """Console entry point: user errors and unwritable or unreadable files print one clear
    line and exit 2, never 1 (which gates as a regression)."""
    try:
        app()
    except LinqEvalError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(_EXIT_UNUSABLE)
    except ModuleNotFoundError as exc:
        extra = extra_providing(exc.name or "")
        if extra is None:
            raise
        typer.echo(
            f"error: this command runs models, which needs {exc.name} (not installed): "
            f"pip install 'linq-eval[{extra}]'",
            err=True,
        )
        sys.exit(_EXIT_UNUSABLE)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        typer.echo(f"error: {exc.strerror or exc}{where}", err=True)
        sys.exit(_EXIT_UNUSABLE)


__all__ = ["EXIT_FAIL", "ListOptionsCommand", "RunCommand", "app", "main"]
