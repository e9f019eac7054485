"""``linq-eval profiles``."""

from __future__ import annotations

import json

import typer

from linq_eval.cli.app import app
from linq_eval.model.profiles import PROFILES


@app.command("profiles")
def profiles_command(
    output_format: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """List the model profiles and the settings each one fixes.

    Example: linq-eval profiles --format json
    """
    if output_format == "json":
        typer.echo(json.dumps({k: p.as_dict() for k, p in PROFILES.items()}, indent=2))
        return
    typer.echo(f"{'profile':24} {'pool':5} {'policy':12} {'max_length':16} model  - description")
    for p in PROFILES.values():
        typer.echo(
            f"{p.name:24} {p.pooling:5} policy={p.policy:5} max_length={p.max_length:<5} "
            f"{p.model}  - {p.description}"
        )
