"""What every part of a policy's build shares: the spec being built, and the problems found,
collected (never raised one at a time) so a user fixes a file in one pass."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING

from modelroute.errors import Problem
from modelroute.policy.schema import PolicySpec
from modelroute.policy.source import Path, Source

if TYPE_CHECKING:
    from modelroute.learned.format import LoadedRouter


def suggest(name: str, known: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}?" if close else None


class Checks:
    """The state of one build; the model and route checks extend it."""

    def __init__(
        self,
        spec: PolicySpec,
        source: Source,
        provider_kinds: Collection[str],
        routers: Mapping[str, LoadedRouter],
    ) -> None:
        self.spec = spec
        self.source = source
        self.provider_kinds = provider_kinds
        self.routers = routers
        self.problems: list[Problem] = []

    def error(self, path: Path, message: str, hint: str | None = None) -> None:
        self.problems.append(self.source.problem(path, message, hint))

    def warn(self, path: Path, message: str, hint: str | None = None) -> None:
        self.problems.append(self.source.problem(path, message, hint, severity="warning"))
