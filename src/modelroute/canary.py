"""A canary: a new policy serving a fixed share of the traffic beside the current one.

Which arm serves a request is a pure function of a sticky value, so one caller always lands
on the same arm: by default the caller's API key (its public id, never the key), or a request
field (``field:user``, ``field:metadata.user``). A request with no sticky value falls back to
its request id (random: an unsticky draw with the same share). The value is hashed with the
canary policy's hash, so each new canary draws a fresh slice of callers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelroute.identity import ClientIdentity
from modelroute.policy import Policy
from modelroute.recording import client_key_id, presented_key

BASELINE, CANARY = "baseline", "canary"
_SCALE = 2.0**64


def parse_sticky(text: str) -> str:
    """``key`` or ``field:NAME`` (``NAME`` may be dotted into ``metadata``)."""
    if text == "key":
        return text
    name = text.removeprefix("field:")
    if not text.startswith("field:") or not name or any(not p for p in name.split(".")):
        raise ValueError(f"sticky by 'key' or 'field:NAME' (e.g. field:user), got {text!r}")
    return text


@dataclass(frozen=True, slots=True)
class Canary:
    policy: Policy
    percent: float
    sticky: str = "key"

    def __post_init__(self) -> None:
        if not 0.0 <= self.percent <= 100.0:
            raise ValueError(f"a canary share is a percentage in [0, 100], got {self.percent}")
        parse_sticky(self.sticky)

    def arm(
        self,
        body: Mapping[str, Any],
        headers: Mapping[str, str] | None,
        identity: ClientIdentity | None,
        request_id: str,
    ) -> str:
        value = self.sticky_value(body, headers, identity) or request_id
        digest = hashlib.sha256(f"{self.policy.hash}:{value}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / _SCALE
        return CANARY if draw * 100.0 < self.percent else BASELINE

    def sticky_value(
        self,
        body: Mapping[str, Any],
        headers: Mapping[str, str] | None,
        identity: ClientIdentity | None,
    ) -> str | None:
        if self.sticky == "key":
            return (
                identity.key_id if identity is not None else client_key_id(presented_key(headers))
            )
        value: Any = body
        for part in self.sticky.removeprefix("field:").split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return None if value is None else str(value)
