"""Cascade escalation (the ``triage`` route: [[primary], [secondary]], logprobs confidence,
threshold 0.6): accepted, escalated, and the doubted answer kept when later tiers fail."""

from __future__ import annotations

import math

import pytest

from modelroute.failures import FailureClass
from modelroute.testing import Fail, Reply, ScriptedProvider

from .support import ask, make_router, starts, trail

STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])


@STREAM
async def test_a_confident_answer_is_accepted_without_escalation(stream: bool) -> None:
    provider = ScriptedProvider({"primary": Reply("Paris", logprob=-0.05, latency_s=0.04)})
    answer, record = await ask(make_router(provider), "triage", stream=stream)
    assert answer == "Paris"
    assert record.escalations == 0 and record.final_model == "primary"
    assert trail(record) == [("primary", "ok", None)]
    assert record.attempts[0].confidence == pytest.approx(math.exp(-0.05))
    [sent] = provider.calls
    # Asked whole (confidence needs the whole answer) and with logprobs, even for a stream.
    assert sent.stream is False
    assert sent.body["logprobs"] is True and sent.body["stream"] is False


@STREAM
async def test_a_low_confidence_answer_escalates_to_the_next_tier(stream: bool) -> None:
    provider = ScriptedProvider({"primary": Reply("maybe", logprob=-2.0, latency_s=0.04)})
    answer, record = await ask(make_router(provider), "triage", stream=stream)
    assert answer == "secondary answer"
    assert record.escalations == 1 and record.final_model == "secondary"
    assert trail(record) == [("primary", "low_confidence", None), ("secondary", "ok", None)]
    assert record.attempts[0].confidence == pytest.approx(math.exp(-2.0))
    assert starts(record) == [0.0, 40.0]
    last = provider.calls[-1]
    # The last tier is asked exactly what the client asked: no logprobs added.
    assert last.model == "secondary" and "logprobs" not in last.body
    assert last.stream is stream


@STREAM
async def test_the_doubted_answer_is_kept_when_every_later_tier_fails(stream: bool) -> None:
    provider = ScriptedProvider(
        {
            "primary": Reply("maybe", logprob=-2.0),
            "secondary": Fail(FailureClass.SERVER_ERROR),
        }
    )
    answer, record = await ask(make_router(provider), "triage", stream=stream)
    assert answer == "maybe"  # an answer the policy doubted beats none
    assert record.final_model == "primary" and record.escalations == 1
    assert (
        trail(record)
        == [("primary", "low_confidence", None)] + [("secondary", "failed", "server_error")] * 3
    )
