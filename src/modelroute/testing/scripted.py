"""``ScriptedProvider``: an in-process upstream for engine tests, with no sockets.

Each model (by its ``model_id``) answers after a fixed latency on the event loop's clock, or
fails with an OpenAI-shaped error, drawn from seeded probabilities or played from a script.
The errors are what the OpenAI provider raises for the same HTTP response, so everything
above the provider (classification, retries, breakers, planning, records) runs for real.
Under an event loop whose clock is virtual, thousands of requests take simulated seconds.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelroute.policy.compiled import Model
from modelroute.testing.sim_wire import WireError
from modelroute.testing.sim_wire_openai import OpenAIWire
from modelroute.types import Completion, StreamChunk, UpstreamError

OUTCOMES = ("ok", "server_error", "overloaded", "rate_limited")


@dataclass(slots=True)
class Behaviour:
    """How one model answers: ``script`` first (one outcome per call), then ``faults``
    (outcome -> probability, drawn independently for every call)."""

    faults: Mapping[str, float] = field(default_factory=dict)
    script: list[str] = field(default_factory=list)
    latency_s: float = 0.02
    retry_after_s: float | None = 1.0  # sent with every rate_limited answer

    def __post_init__(self) -> None:
        unknown = (set(self.faults) | set(self.script)) - set(OUTCOMES)
        if unknown:
            raise ValueError(f"unknown outcome(s) {sorted(unknown)}; known: {OUTCOMES}")


class ScriptedProvider:
    """The ``Provider`` protocol over ``Behaviour`` per model id. ``calls`` counts what each
    model was sent, by outcome."""

    def __init__(self, models: Mapping[str, Behaviour], seed: int = 0) -> None:
        self.models = dict(models)
        self.calls: Counter[tuple[str, str]] = Counter()
        self._rng = random.Random(seed)
        self._wire = OpenAIWire()

    def _draw(self, model_id: str) -> tuple[Behaviour, str]:
        behaviour = self.models[model_id]
        if behaviour.script:
            outcome = behaviour.script.pop(0)
        else:
            outcome, roll = "ok", self._rng.random()
            for name, chance in behaviour.faults.items():
                if roll < chance:
                    outcome = name
                    break
                roll -= chance
        self.calls[(model_id, outcome)] += 1
        return behaviour, outcome

    def _error(self, model_id: str, outcome: str, behaviour: Behaviour) -> UpstreamError:
        headers: dict[str, str] = {}
        problem: WireError
        if outcome == "rate_limited":
            wait = behaviour.retry_after_s
            problem = self._wire.rate_limited(model_id, wait or 0.0)
            if wait is not None:
                headers = {
                    "retry-after": str(math.ceil(wait)),
                    "retry-after-ms": str(round(wait * 1000)),
                }
        elif outcome == "overloaded":
            problem = self._wire.overloaded()
        else:
            problem = self._wire.server_error()
        return UpstreamError(status=problem.status, body=problem.body, headers=headers)

    async def complete(self, model: Model, body: dict[str, Any], api_key: str | None) -> Completion:
        behaviour, outcome = self._draw(model.model_id)
        await asyncio.sleep(behaviour.latency_s)
        if outcome != "ok":
            raise self._error(model.model_id, outcome, behaviour)
        return Completion.from_openai(
            {
                "object": "chat.completion",
                "model": model.model_id,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": f"{model.model_id} answer"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
            }
        )

    async def stream(
        self, model: Model, body: dict[str, Any], api_key: str | None
    ) -> AsyncIterator[StreamChunk]:
        completion = await self.complete(model, body, api_key)
        delta = {"index": 0, "delta": {"content": completion.content}, "finish_reason": "stop"}
        yield StreamChunk.from_openai({"model": model.model_id, "choices": [delta]})

    async def aclose(self) -> None:
        return None
