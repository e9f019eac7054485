"""``linq-eval check``."""

from __future__ import annotations

import typer

from linq_eval.cli.app import EXIT_FAIL, app
from linq_eval.cli.options import DTYPE_OPT, MODEL_OPT, RANDOM_OPT, REVISION_OPT
from linq_eval.model.check_record import save_check


@app.command("check")
def _check_command(
    model: str = MODEL_OPT,
    revision: str | None = REVISION_OPT,
    dtype: str | None = DTYPE_OPT,
    device: str | None = typer.Option(None, "--device", help="cpu, cuda or cuda:N."),
    random_init: str | None = RANDOM_OPT,
    record: bool = typer.Option(
        True, "--record/--no-record", help="Record the outcome for later runs' records."
    ),
) -> None:
    """Check model, tokenizer, precision and pooling in a minute, before a full run.

    Encodes the model card's own example (two instructed queries, two passages, max_length
    4096) and compares the scores with the card's (within 0.05 in float32, 0.5 in half
    precision); compares the tokenizer's ids with the sentencepiece reference on fixed texts
    (the card's, double spaces, leading spaces, emoji, CJK, 5,000 characters); checks that
    every input starts with BOS and ends with EOS. One line per check; exit 0 only if all
    pass, 1 otherwise. The outcome is recorded per model and revision, and the record of a
    later `linq-eval run` names it.

    \b
    Examples:
      linq-eval check --model linq-embed-mistral                 # before the full suite
      linq-eval check --model linq-embed-mistral --dtype float32 --device cpu
      linq-eval check --model /models/Linq-Embed-Mistral         # a local copy of the weights
      linq-eval check --random-init tiny --no-record             # the code path, no weights
    """
    from linq_eval.model.check import check_model  # loads torch: lazily, see linq_eval.cli

    report = check_model(
        model, revision=revision, dtype=dtype, device=device, random_init=random_init
    )
    typer.echo(f"{report.model} @ {report.revision} ({report.dtype}, {report.device})")
    for line in report.lines:
        typer.echo(str(line))
    if record:
        typer.echo(f"recorded in {save_check(report)}", err=True)
    if not report.passed:
        raise typer.Exit(EXIT_FAIL)


__all__: list[str] = []
