"""``modelroute simulator``: the fault-injecting upstream, run on its own."""

from __future__ import annotations

from pathlib import Path

import click

from modelroute.cli_common import fail


@click.command()
@click.option(
    "--config",
    "config",
    required=True,
    type=click.Path(),
    help="The simulator's YAML configuration.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8900, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--until-stdin-closes",
    is_flag=True,
    help="Stop when stdin reaches end of file (ignoring Ctrl-C): for a parent process that "
    "holds the pipe, so the simulator never outlives it.",
)
def simulator(config: str, host: str, port: int, until_stdin_closes: bool) -> None:
    """Run the fault-injecting upstream simulator (OpenAI and Anthropic wire formats)."""
    from pydantic import ValidationError

    from modelroute.testing import run_simulator

    if not Path(config).is_file():
        fail(f"simulator config not found: {config}")
    try:
        run_simulator(
            config,
            host,
            port,
            ready=lambda url: click.echo(f"simulator: listening on {url}", err=True),
            until_stdin_closes=until_stdin_closes,
        )
    except ValidationError as exc:
        fail(f"invalid simulator config {config}:\n{exc}")
