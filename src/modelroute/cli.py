"""The ``modelroute`` command. Errors carry their exit code: 2 for bad input, never a traceback.

Each verb lives in a module of its own (``cli_*.py``); this one gathers them into the group."""

from __future__ import annotations

import click

from modelroute.cli_common import EXIT_BAD_INPUT, UsageFailure, token_env_of
from modelroute.cli_policy import check, explain
from modelroute.cli_serve import SERVE_ENV, app_factory, serve
from modelroute.cli_simulator import simulator

__all__ = [
    "EXIT_BAD_INPUT", "SERVE_ENV", "UsageFailure", "app_factory", "check", "explain", "main",
    "serve", "simulator", "token_env_of",
]  # fmt: skip


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="modelroute")
def main() -> None:
    """Route each LLM request to the model best suited to it, by a declared policy."""


def _register_commands() -> None:
    from modelroute.cli_analysis import replay
    from modelroute.cli_audit import audit
    from modelroute.cli_calibrate import calibrate
    from modelroute.cli_compare import compare
    from modelroute.cli_drift import drift
    from modelroute.cli_eval import eval_command
    from modelroute.cli_keys import keys
    from modelroute.cli_outcomes import outcomes
    from modelroute.cli_records import export, logs, show, stats
    from modelroute.cli_simulate import simulate
    from modelroute.cli_train import train_command
    from modelroute.cli_ui import ui

    commands = (
        check, explain, serve, simulator, logs, show, stats, export, replay, outcomes,
        eval_command, calibrate, audit, drift, ui, keys, compare, simulate, train_command,
    )  # fmt: skip
    for command in commands:
        main.add_command(command)


_register_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
