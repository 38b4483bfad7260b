"""The best doubted answer when every later tier fails: the cheap tier answered below the
threshold, nothing after it answered, so the client gets the most confident of the doubted
answers (an answer the policy doubted beats none), and the record says so."""

from __future__ import annotations

import math

import pytest

from modelroute.failures import FailureClass
from modelroute.testing import Fail, Hang, Reply, ScriptedProvider

from .support import ask, make_router, trail

ROUTES = """
routes:
  triage:
    strategy:
      kind: cascade
      tiers: [[primary], [secondary]]
      confidence: {signal: logprobs, threshold: 0.6}
  three-tiers:
    retries: {max_attempts: 1}
    strategy:
      kind: cascade
      tiers: [[primary], [mid], [secondary]]
      confidence: {signal: logprobs, threshold: 0.6}
  short:
    retries: {max_attempts: 1}
    timeouts: {attempt_ms: 1000, total_ms: 1000}
    strategy:
      kind: cascade
      tiers: [[primary], [secondary, third]]
      confidence: {signal: logprobs, threshold: 0.6}
"""
STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
KEPT = "below the confidence threshold; answered because every later tier failed"


def router(provider: ScriptedProvider):  # type: ignore[no-untyped-def]
    return make_router(provider, routes=ROUTES)


@STREAM
async def test_the_doubted_answer_is_returned_and_the_record_says_so(stream: bool) -> None:
    provider = ScriptedProvider(
        {"primary": Reply("maybe", logprob=-2.0), "secondary": Fail(FailureClass.SERVER_ERROR)}
    )
    r = router(provider)
    answer, record = await ask(r, "triage", stream=stream)
    assert answer == "maybe"
    assert record.status == "ok" and record.final_model == "primary"
    doubted = record.attempts[0]
    assert doubted.outcome == "low_confidence" and doubted.message == KEPT
    assert record.confidence == pytest.approx(math.exp(-2.0)) == doubted.confidence
    assert record.escalations == 1
    assert [a.outcome for a in record.attempts[1:]] == ["failed"] * 3


@STREAM
@pytest.mark.parametrize(
    ("first", "second", "kept"), [(-1.0, -0.7, "mid"), (-0.7, -1.0, "primary")]
)
async def test_the_most_confident_doubted_answer_wins(
    stream: bool, first: float, second: float, kept: str
) -> None:
    provider = ScriptedProvider(
        {
            "primary": Reply("first guess", logprob=first),
            "mid": Reply("second guess", logprob=second),
            "secondary": Fail(FailureClass.SERVER_ERROR),
        }
    )
    answer, record = await ask(router(provider), "three-tiers", stream=stream)
    assert answer == ("second guess" if kept == "mid" else "first guess")
    assert record.final_model == kept and record.escalations == 2
    assert trail(record) == [
        ("primary", "low_confidence", None),
        ("mid", "low_confidence", None),
        ("secondary", "failed", "server_error"),
    ]
    best = max(first, second)
    assert record.confidence == pytest.approx(math.exp(best))
    messages = {a.model: a.message for a in record.attempts}
    assert messages[kept] == KEPT
    assert messages["primary" if kept == "mid" else "mid"] is None  # doubted, not answered


@STREAM
async def test_the_doubted_answer_survives_the_deadline_passing_in_a_later_tier(
    stream: bool,
) -> None:
    # secondary hangs until the request's 1 s deadline; third is then not even tried.
    provider = ScriptedProvider(
        {"primary": Reply("maybe", logprob=-2.0, latency_s=0.04), "secondary": Hang()}
    )
    answer, record = await ask(router(provider), "short", stream=stream)
    assert answer == "maybe" and record.final_model == "primary"
    assert trail(record) == [
        ("primary", "low_confidence", None),
        ("secondary", "failed", "timeout"),
    ]
    assert record.attempts[0].message == KEPT


@STREAM
@pytest.mark.parametrize("cls", [FailureClass.AUTH, FailureClass.BAD_REQUEST])
async def test_the_doubted_answer_survives_a_later_tier_failing_fast(
    stream: bool, cls: FailureClass
) -> None:
    # A failure that ends a walk at once (the key is wrong, the upstream refuses the request)
    # still leaves the answer the first tier gave.
    provider = ScriptedProvider({"primary": Reply("maybe", logprob=-2.0), "secondary": Fail(cls)})
    answer, record = await ask(router(provider), "triage", stream=stream)
    assert answer == "maybe" and record.final_model == "primary"
    assert trail(record) == [("primary", "low_confidence", None), ("secondary", "failed", cls)]
    assert record.attempts[0].message == KEPT
