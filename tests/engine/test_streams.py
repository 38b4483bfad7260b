"""Streams: free to fall back until the first content byte; after it, a failure or a silence
longer than the route's ``attempt_ms`` ends the stream with an error, the record says how,
and the breaker hears of it."""

from __future__ import annotations

import asyncio

from modelroute.failures import FailureClass
from modelroute.records.record import AttemptResult
from modelroute.testing import Fail, Hang, Reply, ScriptedProvider

from .support import ask, body, broken_stream, make_router, starts, trail

STORY = ("one ", "two ", "three ", "four")


async def test_a_stream_that_fails_before_its_first_content_falls_back() -> None:
    cut_at_once = Reply(chunks=STORY, latency_s=0.03, fail_after=0)
    provider = ScriptedProvider({"primary": cut_at_once})
    answer, record = await ask(make_router(provider), "once", stream=True)
    assert answer == "secondary answer"
    assert trail(record) == [("primary", "failed", "server_error"), ("secondary", "ok", None)]
    assert starts(record) == [0.0, 30.0]
    assert record.status == "ok"


async def test_a_failure_after_the_first_content_ends_the_stream_with_an_error() -> None:
    cut = Reply(chunks=STORY, gap_s=0.01, fail_after=3)
    provider = ScriptedProvider({"primary": cut})
    router = make_router(provider, "  circuit_breaker: {consecutive_failures: 1}\n")
    received, error, record = await broken_stream(router, "chat")
    assert received == "one two three "  # what was sent before the fault, nothing after
    assert error.failure_class == "server_error"
    assert record.status == "stream_error" and record.failure == "server_error"
    assert record.final_model == "primary"
    assert trail(record) == [("primary", "failed", "server_error")]
    assert record.answer == "one two three "
    assert provider.sent() == [("primary", "ok")]  # no fallback once committed
    assert router.breakers.state("primary") == "open"  # the breaker heard of it


async def test_an_error_class_after_the_first_content_is_kept() -> None:
    cut = Reply(chunks=STORY, fail_after=1, failure=Fail(FailureClass.OVERLOADED))
    received, error, record = await broken_stream(
        make_router(ScriptedProvider({"primary": cut})), "chat"
    )
    assert received == "one "
    assert error.failure_class == "overloaded" and record.failure == "overloaded"
    # The engine hands the failure on classified, as a Failure, not as loose strings.
    assert error.failure.cls is FailureClass.OVERLOADED and error.failure.message == str(error)
    assert record.attempts[0].outcome is AttemptResult.FAILED


async def test_a_silence_after_the_first_content_ends_the_stream_at_the_idle_limit() -> None:
    """``quick`` allows 250 ms between events: after "one", the upstream says nothing more."""
    stalled = Reply(chunks=STORY, latency_s=0.02, fail_after=1, failure=Hang())
    provider = ScriptedProvider({"primary": stalled})
    router = make_router(provider)
    loop = asyncio.get_running_loop()
    received, error, record = await broken_stream(router, "quick")
    assert received == "one "
    assert error.failure_class == "timeout" and str(error) == "no stream data for 250 ms"
    assert round(loop.time(), 9) == 0.27  # 250 ms after the first event, exactly
    assert record.status == "stream_error" and record.failure == "timeout"
    assert trail(record) == [("primary", "failed", "timeout")]
    assert provider.closed_streams == 1  # the silent upstream was let go
    assert provider.sent() == [("primary", "ok")]


async def test_gaps_within_the_idle_limit_never_end_a_stream() -> None:
    steady = Reply(chunks=STORY * 5, gap_s=0.24)  # 19 gaps just under 250 ms
    answer, record = await ask(
        make_router(ScriptedProvider({"primary": steady})), "quick", stream=True
    )
    assert answer == "".join(STORY * 5)
    assert record.status == "ok"
    assert round(record.latency_ms, 6) == round(19 * 240.0, 6)


async def test_time_spent_on_a_slow_client_does_not_count_as_silence() -> None:
    provider = ScriptedProvider({"primary": Reply(chunks=STORY, gap_s=0.01)})
    opened = await make_router(provider).stream(body("quick", stream=True))
    received = ""
    async for chunk in opened:
        received += chunk.content
        await asyncio.sleep(1.0)  # the client reads one event a second
    assert received == "".join(STORY)
    assert opened.record.status == "ok" and opened.record.failure is None


async def test_a_stream_ending_with_no_content_falls_back() -> None:
    provider = ScriptedProvider({"primary": Reply(text="")})
    answer, record = await ask(make_router(provider), "chat", stream=True)
    assert answer == "secondary answer"
    assert trail(record) == [("primary", "failed", "empty_response"), ("secondary", "ok", None)]
