"""Fitting a cascade's threshold on a simulated dataset whose truth is known
(``simulated.py``): the fitted threshold meets its target on the held-out prompts, and what
the data cannot do is said, never guessed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from modelroute import load_policy_text
from modelroute.analysis.calibration import (
    Calibration,
    Request,
    calibrate,
    candidates,
    parse_target,
    split,
)
from modelroute.analysis.calibration_text import render_calibration
from modelroute.outcomes import Outcome, OutcomeSource
from modelroute.policy import Policy

from .simulated import (
    CHEAP_COST,
    POLICY,
    STRONG_COST,
    expected_accuracy,
    simulated_outcomes,
)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy_text(POLICY, "calibration.yaml")


def run(
    policy: Policy,
    outcomes: list[Outcome],
    target: str,
    held_out: float = 0.5,
    only: str | None = None,
) -> Calibration:
    route = policy.routes["triage"]
    goal = parse_target(target)
    return calibrate(Request(policy, route, outcomes, goal, held_out=held_out, only=only))


def test_calibration_meets_its_target_on_the_held_out_split(policy: Policy) -> None:
    result = run(policy, simulated_outcomes(1200), "accuracy>=0.9")
    assert result.verdict == "calibrated"
    assert result.chosen is not None and result.chosen.signal == "logprobs"
    held = result.held_out
    assert held is not None and held.quality.n == 600
    assert held.quality.mean is not None and held.quality.mean >= 0.9
    t = held.threshold
    # The fit keeps a margin: above the threshold whose expected accuracy is exactly 0.9...
    assert expected_accuracy(t) > 0.9
    # ...and the held-out figures agree with the truth the data was drawn from.
    assert held.quality.low is not None and held.quality.high is not None
    assert held.quality.low <= expected_accuracy(t) <= held.quality.high
    assert held.escalation.low is not None and held.escalation.high is not None
    assert held.escalation.low <= t <= held.escalation.high  # P(confidence < t) = t
    assert held.cost_usd == pytest.approx(CHEAP_COST + (held.escalation.mean or 0) * STRONG_COST)
    assert held.strongest_cost_usd == pytest.approx(STRONG_COST)
    assert held.saving is not None and (held.saving.mean or 0) > 0


def test_a_quality_ratio_target_is_relative_to_the_last_tier_alone(policy: Policy) -> None:
    result = run(policy, simulated_outcomes(1200), "quality_ratio>=0.95")
    assert result.verdict == "calibrated"
    held = result.held_out
    assert held is not None and held.ratio.mean is not None
    assert held.ratio.mean >= 0.95
    assert held.ratio.mean == pytest.approx((held.quality.mean or 0) / (held.strongest.mean or 1))
    assert held.ratio.low is not None and held.ratio.low < held.ratio.mean < (held.ratio.high or 0)


def test_an_impossible_target_is_reported_as_such(policy: Policy) -> None:
    # The large model alone is right 95% of the time: no cascade of these reaches 99%.
    result = run(policy, simulated_outcomes(1200), "accuracy>=0.99")
    assert result.verdict == "cannot_meet"
    assert result.chosen is None and result.held_out is None
    [fit] = result.signals
    closest = fit.closest
    assert fit.chosen is None and closest is not None
    assert closest.quality.mean is not None and closest.quality.mean < 0.99


def test_too_few_paired_prompts_is_not_enough_evidence(policy: Policy) -> None:
    result = run(policy, simulated_outcomes(40), "accuracy>=0.9")
    assert result.verdict == "not_enough_evidence"
    # quality.min_samples (30) per part, at a 0.5 split: 60 prompts.
    assert result.min_per_part == 30 and result.needed_prompts == 60
    assert result.paired_prompts == 40
    [fit] = result.signals
    assert fit.why_not is not None and fit.why_not.startswith("not enough evidence")
    assert run(policy, simulated_outcomes(40), "accuracy>=0.9", held_out=0.25).needed_prompts == 120


def test_the_cheaper_signal_wins_and_an_uninformative_one_costs_more(policy: Policy) -> None:
    # label_probability is logged too, but is noise: to reach the target it must escalate
    # nearly everything.
    result = run(policy, simulated_outcomes(1200, noise=True), "accuracy>=0.9")
    fits = {f.signal: f for f in result.signals}
    assert set(fits) == {"logprobs", "label_probability"}
    assert result.chosen is not None and result.chosen.signal == "logprobs"
    informative, noise = fits["logprobs"].chosen, fits["label_probability"].chosen
    assert informative is not None
    assert noise is None or (noise.cost_usd or 0) > (informative.cost_usd or 0)
    only = run(policy, simulated_outcomes(1200, noise=True), "accuracy>=0.9", only="logprobs")
    assert [f.signal for f in only.signals] == ["logprobs"]


def test_a_signal_the_route_cannot_declare_is_not_chosen(policy: Policy) -> None:
    outcomes = [
        replace(o, outcome_id="", confidences={"verifier": 0.9}) if o.model == "small" else o
        for o in simulated_outcomes(200)
    ]
    result = run(policy, outcomes, "accuracy>=0.9")
    [fit] = result.signals
    assert fit.signal == "verifier" and fit.why_not is not None
    assert "declares no 'verifier'" in fit.why_not
    assert result.verdict == "not_enough_evidence"


def test_a_threshold_fitted_on_unrepresentative_prompts_is_caught_held_out(
    policy: Policy,
) -> None:
    # On the held-out prompts the small model is confidently wrong: the fit cannot see it.
    outcomes = simulated_outcomes(1200)
    _, held = split({o.prompt_id or "" for o in outcomes}, 0.5, 0)
    flipped = [
        replace(o, outcome_id="", score=0.0) if o.model == "small" and o.prompt_id in held else o
        for o in outcomes
    ]
    result = run(policy, flipped, "accuracy>=0.9")
    assert result.verdict == "held_out_miss"
    assert result.held_out is not None and not result.held_out.holds(result.target)


def test_pairing_takes_the_newest_outcome_and_counts_the_unpaired(policy: Policy) -> None:
    outcomes = simulated_outcomes(100)
    # An older run of the same prompts, every score the opposite of the newer one's.
    older = [
        replace(o, outcome_id="", run="old", created_at=0.0, score=1.0 - o.score) for o in outcomes
    ]
    alone = Outcome(OutcomeSource.EVAL, "exact", 1.0, "small", 1.0, prompt_id="x", route="triage")
    result = run(policy, [*outcomes, *older, alone], "accuracy>=0.5")
    assert result.paired_prompts == 100 and result.unpaired_prompts == 1
    _, held = split({o.prompt_id or "" for o in outcomes}, 0.5, 0)
    newest = [o.score for o in outcomes if o.model == "large" and o.prompt_id in held]
    assert result.held_out is not None
    assert result.held_out.strongest.mean == pytest.approx(sum(newest) / len(newest))


def test_thresholds_fall_between_observed_confidences() -> None:
    import numpy as np

    assert candidates(np.array([[0.2], [0.5], [0.5], [0.9]])) == [0.1, 0.3, 0.7, 0.95]
    # Answers at confidence 0 are accepted only by threshold 0; nothing escalates 1.0.
    assert candidates(np.array([[0.0], [1.0]])) == [0.0, 0.5]


@pytest.mark.parametrize(
    "text", ["accuracy>0.9", "accuracy>=1.5", "accuracy>=0", "recall>=0.9", "", "accuracy>=x"]
)
def test_a_bad_target_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="target"):
        parse_target(text)


def test_targets_parse() -> None:
    assert str(parse_target(" accuracy >= 0.9 ")) == "accuracy >= 0.9"
    assert parse_target("quality_ratio>=.95").value == 0.95


def test_outcomes_without_confidences_cannot_be_calibrated(policy: Policy) -> None:
    bare = [replace(o, outcome_id="", confidences={}) for o in simulated_outcomes(200)]
    result = run(policy, bare, "accuracy>=0.9")
    assert result.verdict == "not_enough_evidence" and result.signals == ()
    assert result.paired_prompts == 200
    text = render_calibration(result)
    assert "no confidence is logged on the early tiers' outcomes" in text
    assert "not enough evidence to calibrate" in text
