"""``linq-eval profiles``."""

from __future__ import annotations

import dataclasses
import json

import typer

from linq_eval.cli.app import app
from linq_eval.errors import ConfigError
from linq_eval.model.profile_sources import SOURCES, UNSUPPORTED
from linq_eval.profiles import PROFILES


@app.command("profiles")
def _profiles_command(
    output_format: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """List the model profiles: the conventions each fixes, where they come from, what they
    were verified against, where they differ from mteb's implementation; then the leaderboard
    models no profile supports, with the reason.

    Example: linq-eval profiles --format json
    """
    if output_format not in ("table", "json"):
        raise ConfigError(f"Unknown --format {output_format!r}; use table or json.")
    if output_format == "json":
        profiles = {
            k: {**dataclasses.asdict(p), **dataclasses.asdict(SOURCES[k])}
            for k, p in PROFILES.items()
        }
        typer.echo(json.dumps({"profiles": profiles, "unsupported": UNSUPPORTED}, indent=2))
        return
    width = max(len(name) for name in PROFILES)
    typer.echo(f"{'profile':{width}}  model@revision  - description")
    for p in PROFILES.values():
        src = SOURCES[p.name]
        typer.echo(f"{p.name:{width}}  {p.model}@{(p.revision or '-')[:10]}  - {p.description}")
        typer.echo(
            f"  conventions: pooling={p.pooling} eos={p.eos} bos={p.bos} policy={p.policy} "
            f"instructions={p.instructions} template={p.template!r} max_length={p.max_length} "
            f"dtype={p.dtype} (cuda {p.dtype_for('cuda')}) padding={p.padding_side}"
        )
        for line in src.sources:
            typer.echo(f"  source: {line}")
        for line in src.verified_against:
            typer.echo(f"  verified: {line}")
        for setting, reason in src.mteb_differences.items():
            typer.echo(f"  differs from mteb ({setting}): {reason}")
    typer.echo("not supported:")
    for name, reason in UNSUPPORTED.items():
        typer.echo(f"  {name}: {reason}")


__all__: list[str] = []
