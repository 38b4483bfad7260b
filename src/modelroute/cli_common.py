"""What every ``modelroute`` command shares: errors that carry exit code 2 and print one
clear message, a policy loaded or its located problems printed, JSON files read, durations
and token references parsed."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
import orjson

from modelroute.errors import PolicyError
from modelroute.policy import Policy, load_policy

EXIT_BAD_INPUT = 2


class UsageFailure(click.ClickException):
    """A user error: printed as one clear message, exit code 2."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


def fail(message: str) -> NoReturn:
    raise UsageFailure(message)


def policy_or_exit(path: str) -> Policy:
    try:
        return load_policy(path)
    except PolicyError as exc:
        print_problems(exc)
        sys.exit(EXIT_BAD_INPUT)


def print_problems(exc: PolicyError) -> None:
    errors = [p for p in exc.problems if p.severity == "error"]
    for problem in exc.problems:
        click.echo(problem.render(), err=True)
    click.echo(f"{len(errors)} error(s) in {exc.problems[0].file}", err=True)


def read_json(path: str, what: str) -> Any:
    try:
        return orjson.loads(Path(path).read_bytes())
    except FileNotFoundError:
        fail(f"{what} file not found: {path}")
    except IsADirectoryError:
        fail(f"{what} path is a directory: {path}")
    except orjson.JSONDecodeError as exc:
        fail(f"{what} file {path} is not valid JSON: {exc}")


def seconds(option: str, text: str) -> float:
    """'30s', '5m', '1h' or plain seconds, above zero."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smh]?)", text.strip())
    if not found or float(found.group(1)) <= 0:
        fail(f"{option}: {text!r} is not a duration above zero (30s, 5m, 1h)")
    assert found is not None
    return float(found.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[found.group(2)]


def token_env_of(option: str, reference: str | None) -> str | None:
    """The NAME of ``--feedback-token env:NAME`` (or ``--admin-token``), once the variable is
    known to be set. The token itself never appears on the command line, in a file or in a
    log."""
    if reference is None:
        return None
    name = reference.removeprefix("env:")
    if not reference.startswith("env:") or not name.isidentifier():
        fail(f"{option} takes env:NAME, the environment variable holding the token")
    if not os.environ.get(name):
        fail(f"{option}: environment variable {name} is not set")
    return name
