"""Retries and fallbacks by failure class, Retry-After, context length and deadlines, plain
and streamed, each with its exact attempt sequence and timings on virtual time.

The routes (support.py): ``retries.max_attempts`` is the number of attempts on one model, the
first included; 3 by default, with backoff ceilings of 100 ms then 200 ms, fully jittered by
the router's seeded generator (``jitter`` replays its draws).
"""

from __future__ import annotations

import pytest

from modelroute.failures import FailureClass
from modelroute.testing import Fail, Hang, Reply, ScriptedProvider

from .support import ask, fail, jitter, latencies, make_router, ms, starts, trail

STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
ATTEMPTS = 3  # the default route's retries.max_attempts: attempts per model in all
RETRYABLE = [
    (FailureClass.TIMEOUT, None),
    (FailureClass.CONNECT_ERROR, None),
    (FailureClass.RATE_LIMITED, 429),
    (FailureClass.OVERLOADED, 503),
    (FailureClass.SERVER_ERROR, 500),
]


@STREAM
@pytest.mark.parametrize(("cls", "status"), RETRYABLE, ids=[c.value for c, _ in RETRYABLE])
async def test_a_retryable_class_is_retried_on_the_model_then_falls_back(
    cls: FailureClass, status: int | None, stream: bool
) -> None:
    provider = ScriptedProvider({"primary": Fail(cls, latency_s=0.05)})
    router = make_router(provider)
    answer, record = await ask(router, "chat", stream=stream)
    assert answer == "secondary answer"
    assert trail(record) == [("primary", "failed", cls.value)] * ATTEMPTS + [
        ("secondary", "ok", None)
    ]
    assert [a.status for a in record.attempts[:ATTEMPTS]] == [status] * ATTEMPTS
    waits = jitter(0.1, 0.2)  # backoff before the 2nd and the 3rd attempt
    assert starts(record) == [
        0.0,
        ms(0.05 + waits[0]),
        ms(0.10 + waits[0] + waits[1]),
        ms(0.15 + waits[0] + waits[1]),  # the fallback goes at once
    ]
    assert record.status == "ok" and record.final_model == "secondary"
    assert record.streamed is stream
    assert provider.sent() == [("primary", cls.value)] * ATTEMPTS + [("secondary", "ok")]


NOT_RETRIED = [
    FailureClass.CONTENT_POLICY,
    FailureClass.EMPTY_RESPONSE,
    FailureClass.INVALID_RESPONSE,
]


@STREAM
@pytest.mark.parametrize("cls", NOT_RETRIED, ids=[c.value for c in NOT_RETRIED])
async def test_a_class_not_retried_falls_back_at_once(cls: FailureClass, stream: bool) -> None:
    provider = ScriptedProvider({"primary": Fail(cls, latency_s=0.05)})
    answer, record = await ask(make_router(provider), "chat", stream=stream)
    assert answer == "secondary answer"
    assert trail(record) == [("primary", "failed", cls.value), ("secondary", "ok", None)]
    assert starts(record) == [0.0, 50.0]


@STREAM
async def test_a_class_the_route_does_not_retry_falls_back_at_once(stream: bool) -> None:
    """``patient`` retries rate limits only: a 500 there goes straight to the next model."""
    provider = ScriptedProvider({"primary": Fail(FailureClass.SERVER_ERROR)})
    _, record = await ask(make_router(provider), "patient", stream=stream)
    assert trail(record) == [("primary", "failed", "server_error"), ("secondary", "ok", None)]


FATAL = [(FailureClass.AUTH, 401), (FailureClass.BAD_REQUEST, 400)]


@STREAM
@pytest.mark.parametrize(("cls", "status"), FATAL, ids=[c.value for c, _ in FATAL])
async def test_a_request_at_fault_fails_fast(cls: FailureClass, status: int, stream: bool) -> None:
    provider = ScriptedProvider({"primary": Fail(cls)})
    error, record = await fail(make_router(provider), "chat", stream=stream)
    assert error.failure.cls is cls
    assert trail(record) == [("primary", "failed", cls.value)]
    assert record.attempts[0].status == status
    assert record.status == "failed" and record.failure == cls.value
    assert provider.sent() == [("primary", cls.value)]  # no retry, no fallback


@STREAM
async def test_every_candidate_failing_lists_every_attempt_in_order(stream: bool) -> None:
    provider = ScriptedProvider(
        {name: Fail(FailureClass.OVERLOADED) for name in ("primary", "secondary", "third")}
    )
    error, record = await fail(make_router(provider), "everything", stream=stream)
    expected = [
        (name, "failed", "overloaded")
        for name in ("primary", "secondary", "third")
        for _ in range(ATTEMPTS)
    ]
    assert trail(record) == expected
    assert [(a.model, a.outcome, a.failure) for a in error.attempts] == expected
    assert error.failure.cls is FailureClass.OVERLOADED
    assert record.status == "failed" and record.final_model is None


# -- Retry-After ------------------------------------------------------------------------------


@STREAM
async def test_retry_after_is_waited_out_exactly(stream: bool) -> None:
    """The backoff on ``patient`` is at most 100 ms: the 1 s wait is the provider's."""
    rate_limited = Fail(FailureClass.RATE_LIMITED, latency_s=0.02, retry_after_s=1.0)
    provider = ScriptedProvider({"primary": [rate_limited, Reply("Paris")]})
    answer, record = await ask(make_router(provider), "patient", stream=stream)
    assert answer == "Paris"
    assert trail(record) == [("primary", "failed", "rate_limited"), ("primary", "ok", None)]
    assert record.attempts[0].retry_after_s == 1.0
    assert starts(record) == [0.0, 1020.0]


@STREAM
async def test_a_retry_after_shorter_than_the_backoff_leaves_the_backoff(stream: bool) -> None:
    rate_limited = Fail(FailureClass.RATE_LIMITED, retry_after_s=0.001)
    provider = ScriptedProvider({"primary": [rate_limited, Reply()]})
    _, record = await ask(make_router(provider), "patient", stream=stream)
    assert starts(record) == [0.0, ms(max(jitter(0.1)[0], 0.001))]


@STREAM
async def test_a_retry_after_beyond_the_deadline_falls_back_at_once(stream: bool) -> None:
    """``impatient`` has 600 ms in all: waiting 1 s would leave nothing, so it falls back
    at the moment of the 429 instead of sleeping on a lost cause."""
    rate_limited = Fail(FailureClass.RATE_LIMITED, latency_s=0.05, retry_after_s=1.0)
    provider = ScriptedProvider({"primary": rate_limited})
    answer, record = await ask(make_router(provider), "impatient", stream=stream)
    assert answer == "secondary answer"
    assert trail(record) == [("primary", "failed", "rate_limited"), ("secondary", "ok", None)]
    assert starts(record) == [0.0, 50.0]
    assert provider.sent() == [("primary", "rate_limited"), ("secondary", "ok")]


# -- context length ---------------------------------------------------------------------------


@STREAM
async def test_a_context_overflow_skips_to_a_larger_window(stream: bool) -> None:
    provider = ScriptedProvider({"primary": Fail(FailureClass.CONTEXT_LENGTH)})
    answer, record = await ask(make_router(provider), "long", stream=stream)
    assert answer == "secondary answer"
    assert record.decision is not None
    assert record.decision["order"] == ["primary", "mid", "secondary"]
    assert trail(record) == [
        ("primary", "failed", "context_length"),  # not retried: it would overflow again
        ("mid", "skipped", None),  # 2,000 tokens is not larger than primary's 4,000
        ("secondary", "ok", None),
    ]
    assert record.attempts[0].status == 400
    assert record.attempts[1].message == "context window not larger than one that overflowed"
    assert provider.sent() == [("primary", "context_length"), ("secondary", "ok")]


@STREAM
async def test_a_context_overflow_everywhere_is_the_request_at_fault(stream: bool) -> None:
    overflow = Fail(FailureClass.CONTEXT_LENGTH)
    provider = ScriptedProvider({"primary": overflow, "secondary": overflow})
    error, record = await fail(make_router(provider), "long", stream=stream)
    assert error.failure.cls is FailureClass.CONTEXT_LENGTH
    assert trail(record) == [
        ("primary", "failed", "context_length"),
        ("mid", "skipped", None),
        ("secondary", "failed", "context_length"),
    ]


# -- timeouts and deadlines -------------------------------------------------------------------


@STREAM
async def test_an_attempt_that_hangs_times_out_and_falls_back(stream: bool) -> None:
    provider = ScriptedProvider({"primary": Hang()})
    answer, record = await ask(make_router(provider), "quick", stream=stream)
    assert answer == "secondary answer"
    assert trail(record) == [("primary", "failed", "timeout"), ("secondary", "ok", None)]
    assert record.attempts[0].latency_ms == 250.0  # the route's attempt_ms, exactly
    assert starts(record) == [0.0, 250.0]
    assert provider.closed_streams == (1 if stream else 0)  # the hung stream was closed


@STREAM
async def test_the_last_attempt_gets_only_what_is_left_of_the_deadline(stream: bool) -> None:
    provider = ScriptedProvider({"primary": Hang(), "secondary": Hang()})
    error, record = await fail(make_router(provider), "tight", stream=stream)
    assert error.failure.cls is FailureClass.TIMEOUT
    assert trail(record) == [("primary", "failed", "timeout"), ("secondary", "failed", "timeout")]
    assert latencies(record) == [250.0, 150.0]  # 400 ms in all
    assert round(record.latency_ms, 6) == 400.0
    assert record.status == "failed" and record.failure == "timeout"


async def test_a_candidate_reached_after_the_deadline_is_not_called() -> None:
    """``impatient`` allows 600 ms in all, and its first model takes them: the second is
    never called, and the request fails as a timeout."""
    provider = ScriptedProvider({"primary": Hang()})
    error, record = await fail(make_router(provider), "impatient")
    assert provider.sent() == [("primary", "hang")]
    assert trail(record) == [("primary", "failed", "timeout")]
    assert error.failure.cls is FailureClass.TIMEOUT
    assert error.failure.message == "deadline of 600 ms passed"
    assert round(record.latency_ms, 6) == 600.0
