"""The cascade's confidence signals other than ``logprobs`` (test_cascade.py has that one):
``label_probability``, ``validator`` (json and regex) and ``verifier``. Each accepts an answer
at or above the threshold, escalates one below it, and records the confidence on the
attempt that answered."""

from __future__ import annotations

import math

import pytest

from modelroute.failures import FailureClass
from modelroute.testing import Fail, Hang, Reply, ScriptedProvider

from .support import ask, make_router, starts, trail

ROUTES = """
routes:
  classify:
    strategy:
      kind: cascade
      tiers: [[primary], [secondary]]
      confidence: {signal: label_probability, threshold: 0.75,
                   labels: [billing, technical, other]}
  extract:
    strategy:
      kind: cascade
      tiers: [[primary], [secondary]]
      confidence: {signal: validator, validator: json, threshold: 0.5}
  ticket:
    strategy:
      kind: cascade
      tiers: [[primary], [secondary]]
      confidence: {signal: validator, validator: "regex:[A-Z]{3}-[0-9]+", threshold: 0.5}
  checked:
    strategy:
      kind: cascade
      tiers: [[primary], [secondary]]
      confidence: {signal: verifier, verifier: third, threshold: 0.7}
"""
STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
ACCEPTED = [("primary", "ok", None)]
ESCALATED = [("primary", "low_confidence", None), ("secondary", "ok", None)]


def router(provider: ScriptedProvider, defaults: str = ""):  # type: ignore[no-untyped-def]
    return make_router(provider, defaults, routes=ROUTES)


# label_probability: the answer must be a declared label; its confidence is the joint
# probability of its tokens.


@STREAM
async def test_a_probable_declared_label_is_accepted(stream: bool) -> None:
    provider = ScriptedProvider({"primary": Reply("Billing.", logprob=-0.1)})
    answer, record = await ask(router(provider), "classify", stream=stream)
    assert answer == "Billing."  # case and punctuation are ignored when matching labels
    assert trail(record) == ACCEPTED and record.escalations == 0
    assert record.attempts[0].confidence == pytest.approx(math.exp(-0.1))
    assert record.confidence == pytest.approx(math.exp(-0.1))
    assert provider.calls[0].body["logprobs"] is True  # the signal needs them


@STREAM
async def test_a_label_is_scored_by_the_joint_probability_of_its_tokens(stream: bool) -> None:
    # Two tokens at exp(-0.2) each: jointly 0.670, below 0.75 (their mean, 0.819, is not).
    provider = ScriptedProvider({"primary": Reply("other", chunks=("oth", "er"), logprob=-0.2)})
    answer, record = await ask(router(provider), "classify", stream=stream)
    assert answer == "secondary answer"
    assert trail(record) == ESCALATED and record.escalations == 1
    assert record.attempts[0].confidence == pytest.approx(math.exp(-0.4))
    assert record.final_model == "secondary"


async def test_an_answer_outside_the_labels_escalates_however_sure_the_model_was() -> None:
    provider = ScriptedProvider({"primary": Reply("refund", logprob=-0.01)})
    answer, record = await ask(router(provider), "classify")
    assert answer == "secondary answer" and trail(record) == ESCALATED
    assert record.attempts[0].confidence == 0.0


async def test_a_label_without_logprobs_escalates() -> None:
    provider = ScriptedProvider({"primary": Reply("billing")})  # the upstream sent none
    answer, record = await ask(router(provider), "classify")
    assert answer == "secondary answer" and trail(record) == ESCALATED
    assert record.attempts[0].confidence == 0.0


# validator: 1 when the answer passes, else 0; needs no logprobs.


@STREAM
async def test_valid_json_is_accepted_with_confidence_one(stream: bool) -> None:
    provider = ScriptedProvider({"primary": Reply('{"order": 42}')})
    answer, record = await ask(router(provider), "extract", stream=stream)
    assert answer == '{"order": 42}'
    assert trail(record) == ACCEPTED and record.attempts[0].confidence == 1.0
    assert "logprobs" not in provider.calls[0].body  # a validator reads only the text


@STREAM
async def test_an_answer_that_is_not_json_escalates(stream: bool) -> None:
    provider = ScriptedProvider({"primary": Reply('order: 42, "status": open')})
    answer, record = await ask(router(provider), "extract", stream=stream)
    assert answer == "secondary answer"
    assert trail(record) == ESCALATED and record.attempts[0].confidence == 0.0


@pytest.mark.parametrize(
    ("text", "passes"),
    [("ABC-123", True), (" ABC-123\n", True), ("abc-123", False), ("ABC-123 or DEF-4", False)],
)
async def test_a_regex_validator_needs_the_whole_answer_to_match(text: str, passes: bool) -> None:
    provider = ScriptedProvider({"primary": Reply(text)})
    _, record = await ask(router(provider), "ticket")
    assert trail(record) == (ACCEPTED if passes else ESCALATED)
    assert record.attempts[0].confidence == (1.0 if passes else 0.0)


# verifier: another model is asked whether the answer is right; P(yes) is the confidence.


@STREAM
async def test_a_verifier_that_says_yes_accepts_the_answer(stream: bool) -> None:
    provider = ScriptedProvider({"primary": Reply("Paris"), "third": Reply("Yes")})
    answer, record = await ask(
        router(provider), "checked", stream=stream, text="What is the capital of France?"
    )
    assert answer == "Paris"
    assert trail(record) == [("primary", "ok", None), ("third", "ok", None)]
    verifier = record.attempts[1]
    assert verifier.tier == -1 and verifier.message == "verifier"
    assert record.attempts[0].confidence == 1.0 and record.final_model == "primary"
    [_, asked] = provider.calls
    prompt = asked.body["messages"][-1]["content"]
    assert "What is the capital of France?" in prompt and "Paris" in prompt
    assert asked.body["max_tokens"] == 1 and asked.body["logprobs"] is True
    assert "logprobs" not in provider.calls[0].body  # the answer itself needs none


async def test_a_verifier_is_read_by_its_probability_of_yes() -> None:
    # It says "yes", but with P(yes) = 0.6 / (0.6 + 0.3) = 0.667 < 0.7: not sure enough.
    alternatives = (("yes", math.log(0.6)), ("no", math.log(0.3)), ("maybe", math.log(0.1)))
    provider = ScriptedProvider(
        {
            "primary": Reply("Paris"),
            "third": Reply("yes", logprob=math.log(0.6), top_logprobs=alternatives),
        }
    )
    answer, record = await ask(router(provider), "checked")
    assert answer == "secondary answer"
    assert trail(record) == [
        ("primary", "low_confidence", None),
        ("third", "ok", None),
        ("secondary", "ok", None),
    ]
    assert record.attempts[0].confidence == pytest.approx(0.6 / 0.9)


async def test_a_verifier_that_says_no_escalates() -> None:
    provider = ScriptedProvider({"primary": Reply("Lyon"), "third": Reply("No.")})
    answer, record = await ask(router(provider), "checked")
    assert answer == "secondary answer" and record.escalations == 1
    assert record.attempts[0].confidence == 0.0


async def test_a_failing_verifier_escalates() -> None:
    provider = ScriptedProvider(
        {"primary": Reply("Paris"), "third": Fail(FailureClass.SERVER_ERROR)}
    )
    answer, record = await ask(router(provider), "checked")
    assert answer == "secondary answer"
    assert trail(record) == [
        ("primary", "low_confidence", None),
        ("third", "failed", "server_error"),
        ("secondary", "ok", None),
    ]
    assert record.attempts[0].confidence == 0.0


async def test_a_silent_verifier_gets_one_attempts_time_not_the_whole_deadline() -> None:
    # Attempts of 1 s within 10 s: a verifier that never answers is given up after 1 s and
    # the next tier still has the time to answer.
    provider = ScriptedProvider(
        {"primary": Reply("Paris", latency_s=0.04), "third": Hang(), "secondary": Reply("Paris")}
    )
    answer, record = await ask(router(provider), "checked")
    assert answer == "Paris" and record.final_model == "secondary"
    assert trail(record) == [
        ("primary", "low_confidence", None),
        ("third", "failed", "timeout"),
        ("secondary", "ok", None),
    ]
    assert starts(record) == [0.0, 40.0, 1040.0]


async def test_a_verifier_whose_circuit_is_open_is_not_called() -> None:
    provider = ScriptedProvider(
        {"primary": Reply("Paris"), "third": Fail(FailureClass.SERVER_ERROR)}
    )
    defaults = "  circuit_breaker: {consecutive_failures: 2, cooldown_s: 60}\n"
    r = router(provider, defaults)
    for _ in range(2):
        await ask(r, "checked")
    answer, record = await ask(r, "checked")
    assert answer == "secondary answer"
    # Its breaker opened after two failures in a row: the third request does not call it.
    assert [call.model for call in provider.calls].count("third") == 2
    assert trail(record) == [
        ("primary", "low_confidence", None),
        ("third", "skipped", None),
        ("secondary", "ok", None),
    ]
    assert "circuit open" in (record.attempts[1].message or "")
    assert record.attempts[0].confidence == 0.0
