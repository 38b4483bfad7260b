"""``ScriptedProvider``: an in-process upstream for engine tests, with no sockets.

As httpx's ``MockTransport`` serves httpx's own tests, this is a real ``Provider``
(``providers/base.py``) whose answers are written down in advance. Each model plays its
script, one step per call:

- ``Reply``: an answer after ``latency_s``; streamed, its ``chunks`` arrive ``gap_s`` apart
  (the first after ``latency_s``), and ``fail_after`` chunks it may end with a failure or go
  silent instead of finishing;
- ``Fail``: the failure of one class (``failures.FailureClass``) after ``latency_s``, raised as
  the ``UpstreamError`` the OpenAI provider raises for the same response (a 429 with
  ``Retry-After``, a 500, a 503, a refused connection, a read timeout, a context-length 400,
  a body that is not JSON...), so classification, retries, breakers and records run for real;
  ``Fail(EMPTY_RESPONSE)`` is a 200 without content;
- ``Hang``: no answer ever (the engine's deadline has to end it);
- ``Draw``: one of several steps, drawn with the provider's seeded random generator.

When a script runs out the model plays its ``then`` step (by default an answer). Every wait is
an ``asyncio.sleep`` on the running loop: under ``virtual_time.VirtualTimeLoop`` the whole
exchange takes no real time and its timings are exact. ``calls`` lists what each model was
sent, when, and what it played.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelroute.failures import FailureClass
from modelroute.policy.compiled import Model
from modelroute.testing.sim_engine import ContextOverflow
from modelroute.testing.sim_wire_openai import OpenAIWire
from modelroute.types import Completion, StreamChunk, UpstreamError, Usage

_WIRE = OpenAIWire()


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer. ``text`` None: "<model name> answer". Streamed, the pieces are ``chunks``
    (by default the words of ``text``); ``gap_s`` separates them (one gap per piece after the
    first, or one for all). ``fail_after``: after that many pieces, ``failure`` happens
    instead of the end of the stream (``Hang()`` for an upstream that goes silent)."""

    text: str | None = None
    latency_s: float = 0.0
    chunks: tuple[str, ...] | None = None
    gap_s: float | tuple[float, ...] = 0.0
    fail_after: int | None = None
    failure: Fail | Hang | None = None
    logprob: float | None = None  # of every token, for the logprobs confidence signal
    # every token's alternatives as (token, logprob) pairs, as ``top_logprobs`` reports them
    # (a verifier's P(yes)); a tuple, so a reply stays hashable (``Draw`` keys)
    top_logprobs: tuple[tuple[str, float], ...] = ()
    usage: Usage | None = None  # default: 10 prompt tokens, one output token per piece
    reported_model: str | None = None  # default: the model's model_id
    fingerprint: str | None = None

    @property
    def outcome(self) -> str:
        return "ok"


@dataclass(frozen=True, slots=True)
class Fail:
    """A failure of class ``cls`` after ``latency_s``. ``retry_after_s`` is sent as the
    ``retry-after-ms`` and ``retry-after`` headers."""

    cls: FailureClass
    latency_s: float = 0.0
    retry_after_s: float | None = None

    @property
    def outcome(self) -> str:
        return self.cls.value


@dataclass(frozen=True, slots=True)
class Hang:
    """No answer, ever: only the caller's deadline (or a cancellation) ends the call."""

    @property
    def outcome(self) -> str:
        return "hang"


@dataclass(frozen=True, slots=True)
class Draw:
    """One of ``steps`` (step -> probability, the rest of the time ``otherwise``), drawn
    independently for every call from the provider's seeded generator."""

    steps: Mapping[Reply | Fail | Hang, float]
    otherwise: Reply | Fail | Hang = Reply()


Step = Reply | Fail | Hang | Draw
Played = Reply | Fail | Hang


@dataclass(slots=True)
class Script:
    """One model's steps in order, then ``then`` for every later call."""

    steps: list[Step] = field(default_factory=list)
    then: Step = Reply()


@dataclass(frozen=True, slots=True)
class Call:
    """One call the provider received."""

    model: str  # the policy's model name
    at: float  # the loop's clock when it arrived
    stream: bool
    step: Played
    body: dict[str, Any]

    @property
    def outcome(self) -> str:
        return self.step.outcome


class ScriptedProvider:
    """The ``Provider`` protocol over a ``Script`` per model (keyed by the policy's model
    name, or else its ``model_id``). A model without a script answers every call."""

    def __init__(
        self,
        scripts: Mapping[str, Script | Sequence[Step] | Step] | None = None,
        *,
        seed: int = 0,
    ) -> None:
        self.scripts = {name: _script(value) for name, value in (scripts or {}).items()}
        self.calls: list[Call] = []
        self.closed_streams = 0  # streams closed before their end (a hedge loser, a client gone)
        self._rng = random.Random(seed)

    def tally(self) -> Counter[tuple[str, str]]:
        """(model, outcome) -> calls."""
        return Counter((call.model, call.outcome) for call in self.calls)

    def sent(self) -> list[tuple[str, str]]:
        """(model, outcome) of every call, in order."""
        return [(call.model, call.outcome) for call in self.calls]

    def _next(self, model: Model, body: dict[str, Any], stream: bool) -> Played:
        script = self.scripts.get(model.name) or self.scripts.get(model.model_id) or Script()
        step = script.steps.pop(0) if script.steps else script.then
        played = self._draw(step) if isinstance(step, Draw) else step
        now = asyncio.get_running_loop().time()
        self.calls.append(Call(model.name, now, stream, played, body))
        return played

    def _draw(self, draw: Draw) -> Played:
        roll = self._rng.random()
        for step, chance in draw.steps.items():
            if roll < chance:
                return step
            roll -= chance
        return draw.otherwise

    async def complete(self, model: Model, body: dict[str, Any], api_key: str | None) -> Completion:
        reply = await self._answer(model, self._next(model, body, stream=False))
        return Completion.from_openai(_completion(model, reply))

    async def _answer(self, model: Model, step: Played) -> Reply:
        """Wait for the answer (or its first byte) and return it, or raise the failure."""
        if isinstance(step, Hang):
            await _forever()
            raise AssertionError("unreachable")
        await asyncio.sleep(step.latency_s)
        if isinstance(step, Reply):
            return step
        if step.cls is FailureClass.EMPTY_RESPONSE:
            return Reply(text="")
        raise upstream_error(step, model.model_id)

    async def stream(
        self, model: Model, body: dict[str, Any], api_key: str | None
    ) -> AsyncIterator[StreamChunk]:
        step = self._next(model, body, stream=True)
        finished = False
        try:
            reply = await self._answer(model, step)
            async for chunk in self._pieces(model, reply):
                yield chunk
            finished = True
        finally:
            if not finished:
                self.closed_streams += 1

    async def _pieces(self, model: Model, reply: Reply) -> AsyncIterator[StreamChunk]:
        pieces = _pieces(model, reply)
        gaps = reply.gap_s if isinstance(reply.gap_s, tuple) else (reply.gap_s,)
        sent = len(pieces) if reply.fail_after is None else min(reply.fail_after, len(pieces))
        for i in range(sent):
            if i:
                await asyncio.sleep(gaps[min(i - 1, len(gaps) - 1)])
            yield StreamChunk.from_openai(_delta(model, reply, pieces[i], i))
        if reply.fail_after is not None:
            failure = reply.failure or Fail(FailureClass.SERVER_ERROR)
            if isinstance(failure, Hang):
                await _forever()
            else:
                await asyncio.sleep(failure.latency_s)
                raise upstream_error(failure, model.model_id)
        envelope = _envelope(model, reply, "chat.completion.chunk")
        finish = {"index": 0, "delta": {}, "finish_reason": "stop"}
        yield StreamChunk.from_openai({**envelope, "choices": [finish]})
        # As OpenAI sends it when asked (the engine always asks): usage in an event of its own.
        yield StreamChunk.from_openai({**envelope, "choices": [], "usage": _usage(reply, pieces)})

    async def aclose(self) -> None:
        return None


def _script(value: Script | Sequence[Step] | Step) -> Script:
    if isinstance(value, Script):
        return Script(list(value.steps), value.then)
    if isinstance(value, Reply | Fail | Hang | Draw):
        return Script([], value)
    return Script(list(value))


async def _forever() -> None:
    """Wait on nothing a timer will ever end (under virtual time, no clock jumps for it)."""
    await asyncio.get_running_loop().create_future()


def upstream_error(fail: Fail, model_id: str) -> UpstreamError:
    """What the OpenAI provider raises when its upstream fails this way (``classify`` maps it
    back to ``fail.cls``; tests/engine/test_scripted.py checks every class)."""
    headers = {}
    if fail.retry_after_s is not None:
        headers = {
            "retry-after-ms": str(round(fail.retry_after_s * 1000)),
            "retry-after": str(max(1, round(fail.retry_after_s))),
        }
    cls = fail.cls
    if cls is FailureClass.TIMEOUT:
        return UpstreamError(cause="TimeoutError", detail="read timed out", headers=headers)
    if cls is FailureClass.CONNECT_ERROR:
        return UpstreamError(cause="refused", detail="connection refused", headers=headers)
    if cls in (FailureClass.INVALID_RESPONSE, FailureClass.EMPTY_RESPONSE):
        note = "invalid_json" if cls is FailureClass.INVALID_RESPONSE else "empty"
        return UpstreamError(status=200, body=b"{not json", note=note, headers=headers)
    if cls is FailureClass.CONTENT_POLICY:
        message = "Your request was rejected as a result of our safety system."
        error = {"message": message, "type": "invalid_request_error"}
        body = orjson.dumps({"error": {**error, "param": None, "code": "content_policy_violation"}})
        return UpstreamError(status=400, body=body, headers=headers)
    if cls is FailureClass.PREVIOUS_RESPONSE_UNKNOWN:
        wire = _WIRE.bad_request(
            "Previous response with id 'resp_gone' not found.",
            "previous_response_id",
            "previous_response_not_found",
        )
    elif cls is FailureClass.RATE_LIMITED:
        wire = _WIRE.rate_limited(model_id, fail.retry_after_s or 0)
    elif cls is FailureClass.OVERLOADED:
        wire = _WIRE.overloaded()
    elif cls is FailureClass.SERVER_ERROR:
        wire = _WIRE.server_error()
    elif cls is FailureClass.CONTEXT_LENGTH:
        wire = _WIRE.context_length(ContextOverflow(9000, 0, 8000))
    elif cls is FailureClass.AUTH:
        wire = _WIRE.unauthorized()
    else:
        wire = _WIRE.bad_request("Invalid value for 'stop'.", "stop")
    return UpstreamError(status=wire.status, body=wire.body, headers=headers)


def _pieces(model: Model, reply: Reply) -> tuple[str, ...]:
    if reply.chunks is not None:
        return reply.chunks
    text = f"{model.name} answer" if reply.text is None else reply.text
    words = text.split(" ")
    return tuple(w if i == len(words) - 1 else w + " " for i, w in enumerate(words) if w)


def _usage(reply: Reply, pieces: tuple[str, ...]) -> dict[str, Any]:
    usage = reply.usage or Usage(input_tokens=10, output_tokens=len(pieces))
    return usage.to_openai()


def _logprobs(reply: Reply, pieces: Sequence[str]) -> dict[str, Any] | None:
    if reply.logprob is None:
        return None
    top = [{"token": token, "logprob": logprob} for token, logprob in reply.top_logprobs]
    tokens = [{"token": p, "logprob": reply.logprob, "top_logprobs": top} for p in pieces]
    return {"content": tokens}


def _envelope(model: Model, reply: Reply, obj: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": obj,
        "created": 0,
        "model": reply.reported_model or model.model_id,
        "system_fingerprint": reply.fingerprint,
    }


def _completion(model: Model, reply: Reply) -> dict[str, Any]:
    pieces = _pieces(model, reply)
    message = {"role": "assistant", "content": "".join(pieces)}
    choice = {
        "index": 0,
        "message": message,
        "logprobs": _logprobs(reply, pieces),
        "finish_reason": "stop",
    }
    return {
        **_envelope(model, reply, "chat.completion"),
        "choices": [choice],
        "usage": _usage(reply, pieces),
    }


def _delta(model: Model, reply: Reply, piece: str, i: int) -> dict[str, Any]:
    delta: dict[str, Any] = {"content": piece}
    if i == 0:
        delta["role"] = "assistant"
    choice = {"index": 0, "delta": delta, "logprobs": _logprobs(reply, [piece])}
    return {**_envelope(model, reply, "chat.completion.chunk"), "choices": [{**choice}]}
