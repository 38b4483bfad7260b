"""Hedging (``hedge_after_ms``: 100 on the ``hedged`` route of primary, secondary, third):
exact launch times, the winner, and the loser cancelled and closed, on virtual time."""

from __future__ import annotations

import pytest

from modelroute.failures import FailureClass
from modelroute.testing import Fail, Reply, ScriptedProvider

from .support import ask, latencies, make_router, starts, trail

STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])


@STREAM
async def test_the_hedge_answers_from_the_faster_model(stream: bool) -> None:
    provider = ScriptedProvider(
        {"primary": Reply(latency_s=0.8), "secondary": Reply(latency_s=0.05)}
    )
    answer, record = await ask(make_router(provider), "hedged", stream=stream)
    assert answer == "secondary answer"
    assert record.final_model == "secondary"
    assert trail(record) == [("primary", "cancelled", None), ("secondary", "ok", None)]
    assert record.attempts[0].message == "lost the hedge race"
    assert starts(record) == [0.0, 100.0]  # launched at the hedge time
    assert latencies(record) == [150.0, 50.0]  # the loser, cancelled when the winner answered
    assert round(record.latency_ms, 6) == 150.0
    assert provider.sent() == [("primary", "ok"), ("secondary", "ok")]
    assert provider.closed_streams == (1 if stream else 0)  # the loser's stream, closed


@STREAM
async def test_a_first_model_that_answers_in_time_needs_no_hedge(stream: bool) -> None:
    provider = ScriptedProvider({"primary": Reply(latency_s=0.099)})
    answer, record = await ask(make_router(provider), "hedged", stream=stream)
    assert answer == "primary answer"
    assert trail(record) == [("primary", "ok", None)]
    assert provider.sent() == [("primary", "ok")]


@STREAM
async def test_the_partner_is_the_fallback_when_the_first_fails_fast(stream: bool) -> None:
    provider = ScriptedProvider({"primary": Fail(FailureClass.SERVER_ERROR, latency_s=0.03)})
    answer, record = await ask(make_router(provider), "hedged", stream=stream)
    assert answer == "secondary answer"
    assert trail(record) == [("primary", "failed", "server_error"), ("secondary", "ok", None)]
    assert starts(record) == [0.0, 30.0]  # at once, not at the hedge time


@STREAM
async def test_after_both_hedged_models_fail_the_rest_are_tried_in_order(stream: bool) -> None:
    provider = ScriptedProvider(
        {
            "primary": Fail(FailureClass.SERVER_ERROR, latency_s=0.2),
            "secondary": Fail(FailureClass.OVERLOADED, latency_s=0.05),
        }
    )
    answer, record = await ask(make_router(provider), "hedged", stream=stream)
    assert answer == "third answer"
    assert trail(record) == [
        ("primary", "failed", "server_error"),
        ("secondary", "failed", "overloaded"),
        ("third", "ok", None),
    ]
    assert starts(record) == [0.0, 100.0, 200.0]


async def test_a_loser_that_opened_in_the_same_instant_is_closed_at_once() -> None:
    """Both streams produce their first content at 150 ms: one wins, and the other's open
    stream is closed right away, not left to the garbage collector."""
    provider = ScriptedProvider(
        {"primary": Reply(latency_s=0.15), "secondary": Reply(latency_s=0.05)}
    )
    answer, record = await ask(make_router(provider), "hedged", stream=True)
    winner = record.final_model
    [loser] = {"primary", "secondary"} - {winner}
    assert answer == f"{winner} answer"
    attempts = {a.model: a for a in record.attempts}
    assert attempts[winner].outcome == "ok"
    lost = attempts[loser]
    assert (lost.outcome, lost.message) == ("cancelled", "lost the hedge race")
    assert lost.ttft_ms is not None  # it had opened: the same-instant case
    assert provider.closed_streams == 1
