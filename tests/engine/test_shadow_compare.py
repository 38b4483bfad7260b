"""How a shadow's answer is compared with the client's: by a judge model (a candidate
against a baseline), or by agreement on a cascade's labels, with the shadow answer's own
confidence noted for calibration."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from modelroute.failures import FailureClass
from modelroute.testing import Fail, Reply, ScriptedProvider

from .shadow_support import ask, body, counted, make_router, outcomes

JUDGED = "{models: [cheap], sample: 1, judge: judge, max_usd_per_day: 100}"
CASCADE = (
    "{kind: cascade, tiers: [[cheap], [live]], confidence: "
    "{signal: label_probability, labels: [billing, bug, account], threshold: 0.8}}"
)


def _verdict(score: int, reason: str) -> str:
    return json.dumps({"score": score, "reason": reason})


async def test_a_judge_compares_the_shadow_answer_with_the_clients() -> None:
    provider = ScriptedProvider(
        {
            "live": Reply("Paris"),
            "cheap": [Reply("Lyon"), Reply("Paris, France"), Reply("Paris")],
            "judge": [
                Reply(_verdict(0, "another city"), latency_s=0.2),
                Reply(_verdict(7, "the same city"), reported_model="judge-v7"),
                Reply("Looks fine to me."),  # no verdict: a grading failure, not a score
            ],
        }
    )
    router = make_router(provider, JUDGED, workers=1)  # one at a time: outcomes in order
    for _ in range(3):
        await ask(router, "capital of France?")
    await router.aclose()
    first, second = outcomes(router)
    assert (first.grader, first.score, second.score) == ("judge:judge", 0.0, 0.7)
    assert second.detail["judge_version"] == "judge-v7"
    assert second.detail["reason"] == "the same city"
    assert counted(router, "failures", model="cheap", failure="judge_verdict") == 1
    # Judging, like the shadow calls, makes no request record.
    records = list(router.records.records)  # type: ignore[attr-defined]
    assert len(records) == 3 and {a.model for r in records for a in r.attempts} == {"live"}
    judged = [c.body for c in provider.calls if c.model == "judge"]
    prompt = judged[0]["messages"][-1]["content"]
    assert "capital of France?" in prompt
    assert "[Answer to grade]\nLyon\n" in prompt
    assert "[Baseline answer, from another assistant; not necessarily correct]\nParis\n" in prompt
    # An outcome's cost is the shadow model's answer; judging is spent on the judge, and
    # both count in the shadow spend and against the budget.
    assert first.cost_usd == pytest.approx(11 / 1e6)
    judge_cost = first.detail["judge_cost_usd"] + second.detail["judge_cost_usd"]
    failed_judging = (10 + 4) * 5 / 1e6  # ScriptedProvider: 10 prompt tokens, one per word
    assert counted(router, "cost_usd", model="judge") == pytest.approx(judge_cost + failed_judging)
    assert router.shadows is not None
    budget = router.shadows.budgets["chat"]
    shadows = (11 + 12 + 11) / 1e6  # "Lyon", "Paris, France", "Paris"
    assert budget.spent_usd == pytest.approx(shadows + judge_cost + failed_judging)


async def test_a_failing_judge_is_counted_and_stores_nothing() -> None:
    provider = ScriptedProvider(
        {"live": Reply("Paris"), "cheap": Reply("Paris"), "judge": Fail(FailureClass.AUTH)}
    )
    router = make_router(provider, JUDGED)
    seen = await ask(router)
    await router.aclose()
    assert seen.answer == "Paris"
    assert counted(router, "failures", model="cheap", failure="judge_auth") == 1
    assert counted(router, "cost_usd", model="cheap") > 0  # the shadow answer was paid for
    assert outcomes(router) == []
    assert [c.model for c in provider.calls] == ["live", "cheap", "judge"]  # auth: no retry


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_a_cascade_shadow_is_compared_by_label_and_keeps_its_confidence(
    stream: bool,
) -> None:
    provider = ScriptedProvider(
        {
            "cheap": [Reply("bug", logprob=-1.0), Reply("billing", logprob=-0.05)],
            "live": Reply("billing"),
            "tiny": Reply("Billing.", logprob=-0.1),
        }
    )
    shadow = "{models: [tiny], sample: 1, max_usd_per_day: 100}"
    router = make_router(provider, shadow, strategy=CASCADE)
    escalated = await ask(router, "my invoice is wrong", stream=stream)
    accepted = await ask(router, "my invoice is wrong", stream=stream)
    await router.aclose()
    assert escalated.answer == accepted.answer == "billing"
    first, second = outcomes(router)
    assert (first.score, second.score) == (1.0, 1.0)  # "Billing." agrees with "billing"
    assert first.detail["baseline_model"] == "live" and second.detail["baseline_model"] == "cheap"
    assert first.confidences == {"label_probability": pytest.approx(math.exp(-0.1))}
    # Asked with logprobs, as the cascade asks its own tiers, for the confidence.
    tiny = [c for c in provider.calls if c.model == "tiny"]
    assert all(c.body["logprobs"] is True and c.stream is False for c in tiny)


async def test_a_shadow_model_without_logprobs_is_compared_without_a_confidence() -> None:
    provider = ScriptedProvider({"cheap": Reply("billing", logprob=-0.01), "plain": Reply("bug")})
    shadow = "{models: [plain], sample: 1, max_usd_per_day: 100}"
    router = make_router(provider, shadow, strategy=CASCADE)
    await ask(router, "my invoice")
    await router.aclose()
    [outcome] = outcomes(router)
    assert outcome.score == 0.0 and outcome.confidences == {}  # no evidence, no figure
    [plain] = [c for c in provider.calls if c.model == "plain"]
    assert "logprobs" not in plain.body  # never asked for what it cannot give


async def test_an_answer_the_client_never_read_is_not_shadowed() -> None:
    provider = ScriptedProvider({"cheap": Reply("billing", logprob=-0.01), "tiny": Reply("bug")})
    shadow = "{models: [tiny], sample: 1, max_usd_per_day: 100}"
    router = make_router(provider, shadow, strategy=CASCADE)
    opened = await router.stream(body("my invoice", stream=True))  # accepted early: replayed
    await opened.aclose()
    await asyncio.sleep(5)
    await router.aclose()
    assert [c.model for c in provider.calls] == ["cheap"]
