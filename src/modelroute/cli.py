"""The ``modelroute`` command. Errors carry their exit code: 2 for bad input, never a traceback.

Each verb lives in a module of its own (``cli_*.py``); this one gathers them into the group."""

from __future__ import annotations

import importlib

import click

from modelroute.cli_common import EXIT_BAD_INPUT, UsageFailure, token_env_of
from modelroute.cli_policy import check, explain
from modelroute.cli_serve import SERVE_ENV, app_factory, serve
from modelroute.cli_simulator import simulator

__all__ = [
    "EXIT_BAD_INPUT", "SERVE_ENV", "UsageFailure", "app_factory", "check", "explain", "main",
    "serve", "simulator", "token_env_of",
]  # fmt: skip


# Commands other than the four above, imported when run (or listed by --help): each pulls in
# what only it needs (the evaluation's scipy, the trainer's numpy), which ``serve`` never reads.
_LAZY = {
    "logs": "cli_records:logs", "show": "cli_records:show", "stats": "cli_records:stats",
    "export": "cli_records:export", "replay": "cli_analysis:replay",
    "outcomes": "cli_outcomes:outcomes", "eval": "cli_eval:eval_command",
    "calibrate": "cli_calibrate:calibrate", "audit": "cli_audit:audit", "drift": "cli_drift:drift",
    "ui": "cli_ui:ui", "keys": "cli_keys:keys", "compare": "cli_compare:compare",
    "simulate": "cli_simulate:simulate", "train": "cli_train:train_command",
}  # fmt: skip


class _Commands(click.Group):
    """A group whose commands in ``_LAZY`` are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _LAZY:
            module, _, name = _LAZY[cmd_name].partition(":")
            command = getattr(importlib.import_module(f"modelroute.{module}"), name)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="modelroute")
def main() -> None:
    """Route each LLM request to the model best suited to it, by a declared policy."""


for _command in (check, explain, serve, simulator):
    main.add_command(_command)

if __name__ == "__main__":  # pragma: no cover
    main()
