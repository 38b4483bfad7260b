"""Session affinity through the real router, planner and engine over ``ScriptedProvider``,
on virtual time: a conversation stays on the model that served it, the pin follows a
fallback, lapses after its TTL, and a route keeps at most ``max_sessions`` pins."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from modelroute import load_policy_text
from modelroute.failures import FailureClass
from modelroute.planner import plan
from modelroute.records.record import MemorySink, RequestRecord
from modelroute.router import Router
from modelroute.sessions import MemoryPins
from modelroute.testing import Fail, ScriptedProvider

MODEL = """
  {name}:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model_id: {name}-v1
    allow_floating: true
    prices: {{input: {price}, output: {price}}}
    context_window: 64000
    latency: {{p50_ms: 20, p95_ms: 50}}"""

POLICY = (
    "defaults:\n  retries: {max_attempts: 1}\nmodels:"
    + MODEL.format(name="cheap", price=1.0)
    + MODEL.format(name="dear", price=3.0)
    + """
routes:
  chat:
    strategy: {kind: cheapest_qualified, models: [cheap, dear]}
    affinity: {mode: sticky, ttl: 60s, max_sessions: 2}
  adaptive:
    strategy: {kind: cheapest_qualified, models: [cheap, dear]}
    affinity: {mode: adaptive, margin: 0.5}
  plain:
    strategy: {kind: cheapest_qualified, models: [cheap, dear]}
"""
)
STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])


def make_router(provider: ScriptedProvider, **kwargs: Any) -> Router:
    loop = asyncio.get_running_loop()
    return Router(
        load_policy_text(POLICY, "affinity.yaml"),
        providers={"openai": provider},
        clock=loop.time,
        rng=random.Random(1),
        api_keys={},
        sink=MemorySink(capacity=10_000),
        **kwargs,
    )


def turn(
    route: str, conversation: str, n: int, headers: dict[str, str] | None = None, **extra: Any
) -> tuple[dict[str, Any], dict[str, str] | None]:
    """Turn ``n`` of a conversation: the same system prompt and first message every turn."""
    messages = [
        {"role": "system", "content": f"You are the assistant of {conversation}."},
        {"role": "user", "content": f"Hello from {conversation}"},
    ]
    for i in range(1, n):
        messages += [
            {"role": "assistant", "content": f"answer {i}"},
            {"role": "user", "content": f"question {i + 1}"},
        ]
    return {"model": route, "messages": messages, **extra}, headers


async def send(
    router: Router, request: tuple[dict[str, Any], dict[str, str] | None], stream: bool = False
) -> RequestRecord:
    body, headers = request
    if not stream:
        return (await router.chat(body, headers)).record
    opened = await router.stream({**body, "stream": True}, headers)
    assert opened.headers.get("x-modelroute-affinity") is not None
    async for _ in opened:
        pass
    return opened.record


def affinity(record: RequestRecord) -> tuple[str, str, str | None]:
    assert record.decision is not None
    a = record.decision["affinity"]
    return a["action"], a["why"], a["pinned"]


def replays(router: Router, record: RequestRecord) -> bool:
    """Planning the record's input again gives its decision."""
    pi = record.planner_input
    assert pi is not None and record.decision is not None
    return plan(pi.context, router.policy, pi.stats).to_dict() == record.decision


@STREAM
async def test_a_conversation_stays_on_the_model_that_served_it(stream: bool) -> None:
    # cheap fails the first turn: dear answers and the session is pinned to it
    provider = ScriptedProvider({"cheap": [Fail(FailureClass.SERVER_ERROR)]})
    router = make_router(provider)
    first = await send(router, turn("chat", "ada", 1), stream)
    assert affinity(first) == ("initialize", "no_pin", None)
    assert first.final_model == "dear" and first.session is not None
    assert first.session.startswith("fingerprint:")
    for n in (2, 3):
        later = await send(router, turn("chat", "ada", n), stream)
        assert affinity(later) == ("retain", "sticky", "dear")
        assert later.final_model == "dear" and later.session == first.session
        assert later.planner_input is not None and later.planner_input.context.pin == "dear"
        assert later.decision is not None and later.decision["chosen"] == "dear"
        assert replays(router, later)
    # another conversation is its own session, planned afresh
    other = await send(router, turn("chat", "bob", 1), stream)
    assert affinity(other) == ("initialize", "no_pin", None) and other.final_model == "cheap"
    assert [c.model for c in provider.calls] == ["cheap", "dear", "dear", "dear", "cheap"]
    await router.aclose()


async def test_explicit_session_ids_win_over_the_fingerprint() -> None:
    router = make_router(ScriptedProvider({"cheap": [Fail(FailureClass.SERVER_ERROR)]}))
    header = {"x-modelroute-session-id": "conv-42"}
    first = await send(router, turn("chat", "ada", 1, header))
    assert first.session == "header:conv-42" and first.final_model == "dear"
    # a different opening, the same header: the same session
    again = await send(router, turn("chat", "someone else", 1, header))
    assert affinity(again) == ("retain", "sticky", "dear")
    meta = await send(router, turn("chat", "ada", 1, metadata={"session_id": "m-1"}))
    assert meta.session == "metadata:m-1" and affinity(meta)[0] == "initialize"
    user = await send(router, turn("chat", "ada", 1, user="alice@example.com"))
    assert user.session is not None and user.session.startswith("user:")
    assert "alice" not in user.session  # a user id is kept as a hash only
    await router.aclose()


async def test_a_failing_pinned_model_moves_the_pin_to_the_model_that_answered() -> None:
    provider = ScriptedProvider({"cheap": [Fail(FailureClass.SERVER_ERROR)]})
    router = make_router(provider)
    await send(router, turn("chat", "ada", 1))  # pinned to dear
    # a conversation pinned to cheap, then cheap fails: dear answers, and keeps the session
    await send(router, turn("chat", "eve", 1))
    provider.scripts["cheap"].steps.append(Fail(FailureClass.SERVER_ERROR))
    failed_over = await send(router, turn("chat", "eve", 2))
    assert affinity(failed_over) == ("retain", "first_choice", "cheap")
    assert failed_over.final_model == "dear"
    after = await send(router, turn("chat", "eve", 3))
    assert affinity(after) == ("retain", "sticky", "dear") and after.final_model == "dear"
    await router.aclose()


async def test_pins_lapse_after_their_ttl_on_the_routers_clock() -> None:
    router = make_router(ScriptedProvider({"cheap": [Fail(FailureClass.SERVER_ERROR)]}))
    await send(router, turn("chat", "ada", 1))
    await asyncio.sleep(59.0)
    kept = await send(router, turn("chat", "ada", 2))  # read: its TTL starts again
    assert affinity(kept) == ("retain", "sticky", "dear")
    await asyncio.sleep(59.0)
    assert affinity(await send(router, turn("chat", "ada", 3)))[0] == "retain"
    await asyncio.sleep(60.001)
    lapsed = await send(router, turn("chat", "ada", 4))
    assert affinity(lapsed) == ("initialize", "no_pin", None)
    assert lapsed.final_model == "cheap"
    await router.aclose()


async def test_a_route_keeps_at_most_max_sessions_pins_least_recently_used_first() -> None:
    pins = MemoryPins(asyncio.get_running_loop().time)
    router = make_router(ScriptedProvider(), pins=pins)
    for name in ("a", "b"):
        await send(router, turn("chat", name, 1))
    await send(router, turn("chat", "a", 2))  # a is used again: b is now the oldest
    await send(router, turn("chat", "c", 1))  # a third session: b's pin goes
    assert len(pins) == 2
    assert affinity(await send(router, turn("chat", "a", 3)))[0] == "retain"
    assert affinity(await send(router, turn("chat", "b", 2)))[0] == "initialize"
    await router.aclose()


async def test_adaptive_switches_once_the_first_choice_is_better_by_the_margin() -> None:
    router = make_router(ScriptedProvider({"cheap": [Fail(FailureClass.SERVER_ERROR)]}))
    first = await send(router, turn("adaptive", "ada", 1))
    assert first.final_model == "dear"  # pinned to dear, 3x cheap's price
    second = await send(router, turn("adaptive", "ada", 2))
    assert affinity(second) == ("switch", "beyond_margin", "dear")
    assert second.final_model == "cheap"
    assert second.decision is not None
    assert "beyond the margin 0.5" in second.decision["affinity"]["message"]
    third = await send(router, turn("adaptive", "ada", 3))  # now pinned to cheap
    assert affinity(third) == ("retain", "first_choice", "cheap")
    await router.aclose()


async def test_routes_without_affinity_record_no_session() -> None:
    router = make_router(ScriptedProvider())
    result = await router.chat(turn("plain", "ada", 1)[0])
    assert result.record.session is None
    assert result.record.decision is not None and "affinity" not in result.record.decision
    assert "x-modelroute-affinity" not in result.headers
    await router.aclose()


class Unreachable:
    async def get(self, *args: Any) -> str | None:
        raise ConnectionError("pin store down")

    async def put(self, *args: Any) -> None:
        raise ConnectionError("pin store down")

    async def aclose(self) -> None:
        return None


async def test_an_unreachable_pin_store_plans_the_session_as_new() -> None:
    router = make_router(ScriptedProvider(), pins=Unreachable())
    for n in (1, 2):
        record = await send(router, turn("chat", "ada", n))
        assert record.status == "ok" and affinity(record)[0] == "initialize"
    await router.aclose()
