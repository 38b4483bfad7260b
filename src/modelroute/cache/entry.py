"""One cached answer: the OpenAI-shaped body the client got, the model that answered it and
what it cost, as bytes (the same bytes in process memory and in Redis)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from modelroute.types import Completion


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    body: dict[str, Any]  # a ``chat.completion``, as the client got it
    model: str  # the policy's model that answered
    cost_usd: float  # what the answer cost when it was made (every attempt behind it)
    created_at: float  # unix seconds, when it was kept

    def completion(self) -> Completion:
        return Completion.from_openai(self.body)

    def encode(self) -> bytes:
        return orjson.dumps(
            {"body": self.body, "model": self.model, "cost": self.cost_usd, "at": self.created_at}
        )

    @classmethod
    def decode(cls, raw: bytes) -> CachedAnswer | None:
        """None for bytes that are not an entry (written by another version, or damaged)."""
        try:
            data = orjson.loads(raw)
            return cls(data["body"], data["model"], float(data["cost"]), float(data["at"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
