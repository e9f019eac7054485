"""The ``linq-eval`` command line: a thin typer layer, each command calling one library function.

Run ``linq-eval --help`` for the list of commands and ``linq-eval COMMAND --help`` for examples.
"""

from __future__ import annotations

import json
import sys

import typer

from linq_eval.errors import LinqEvalError

app = typer.Typer(
    name="linq-eval",
    help="Evaluate instruction-tuned decoder embedding models (Linq-Embed-Mistral) on MTEB.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Evaluate instruction-tuned decoder embedding models (Linq-Embed-Mistral) on MTEB."""


@app.command("profiles")
def profiles_command(
    output_format: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """List the model profiles and the settings each one fixes.

    Example: linq-eval profiles --format json
    """
    from linq_eval.profiles import PROFILES

    if output_format == "json":
        typer.echo(json.dumps({k: p.as_dict() for k, p in PROFILES.items()}, indent=2))
        return
    for p in PROFILES.values():
        typer.echo(
            f"{p.name:24} {p.pooling:5} policy={p.policy:5} max_length={p.max_length:<5} "
            f"{p.model}  - {p.description}"
        )


# --- commands added by other modules below (keep one section per module) ---


def main() -> None:
    """Console entry point: user errors print one clear line and exit 2."""
    try:
        app()
    except LinqEvalError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
