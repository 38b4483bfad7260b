"""A learned route simulated through the shared decide path, its threshold swept."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from modelroute.analysis.simulate import read_neutral
from modelroute.analysis.simulate.run import contexts, swap_route
from modelroute.analysis.simulate.session import Request, prepare, run
from modelroute.learned import route_scores
from modelroute.learned.format import save_router
from modelroute.planner import EMPTY_STATS, plan
from modelroute.policy import load_policy
from modelroute.policy.compiled import Policy

from .support import MODELS, write_dataset


def _learned(tmp_path: Path, threshold: float | None = None, extra: str = "") -> Path:
    """A hand-made per-category router on the toy set: on easy prompts small is predicted
    0.95 and big 0.99; on hard ones small 0.1 and big 0.95."""
    header = {
        "kind": "category",
        "models": ["small", "big"],
        "params": {"categories": ["easy", "hard"]},
        "threshold": 0.9,
        "target": 0.95,
    }
    table = np.array([[0.95, 0.99], [0.1, 0.95]], np.float32)
    prior = np.array([0.5, 0.97], np.float32)
    save_router(tmp_path / "router.npz", header, {"table": table, "prior": prior})
    override = "" if threshold is None else f"\n      threshold: {threshold}"
    override += extra
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        MODELS
        + f"""
routes:
  smart:
    strategy:
      kind: learned
      models: [small, big]
      router: router.npz{override}
"""
    )
    return policy


def test_the_calibrated_threshold_sends_each_prompt_to_the_right_model(tmp_path: Path) -> None:
    toy = write_dataset(tmp_path / "toy")
    report = run(Request(load_policy(_learned(tmp_path)), read_neutral(toy), route="smart"))
    own = report.line("policy")
    assert own.quality.mean == 1.0 and own.cost == pytest.approx(5.5)
    swept = {x.setting: (x.quality.mean, x.cost) for x in report.lines if x.kind == "curve"}
    assert swept[0.0] == (0.5, 1.0)  # every prediction clears 0: the cheapest model
    assert swept[0.9] == (1.0, 5.5)
    assert swept[1.0] == (1.0, 10.0)  # none clears 1: the highest prediction, big
    # The curve reaches 95% of big's quality at 45% less cost.
    assert report.targets[0].saving is not None
    assert report.targets[0].saving.mean == pytest.approx(0.45)


def test_a_threshold_in_the_policy_is_what_simulate_uses(tmp_path: Path) -> None:
    toy = write_dataset(tmp_path / "toy")
    policy = load_policy(_learned(tmp_path, threshold=0.05))
    report = run(Request(policy, read_neutral(toy), route="smart", sweep=False))
    assert report.line("policy").cost == 1.0  # every prediction clears 0.05


def test_pair_metrics_of_the_learned_route(tmp_path: Path) -> None:
    toy = write_dataset(tmp_path / "toy")
    policy = load_policy(_learned(tmp_path))
    report = run(Request(policy, read_neutral(toy), route="smart", pair=("big-v1", "small-v1")))
    assert report.pair is not None
    # Shares of calls to big: 0 (PGR 0), 0.5 (PGR 1), 1 (PGR 1): APGR 0.75, CPT(80%) 0.4.
    assert report.pair.apgr == pytest.approx(0.75)
    assert report.pair.cpt80 == pytest.approx(0.4)
    spread = report.pair.apgr_interval
    assert spread is not None and spread.low is not None and spread.high is not None
    assert spread.low <= 0.75 <= spread.high and spread.n == 8


def _utility(tmp_path: Path, lam: float) -> Policy:
    rule = f"\n      rule: score_minus_cost\n      lambda: {lam}"
    return load_policy(_learned(tmp_path, extra=rule))


def _gap(policy: Policy, toy: Path) -> float:
    """big's estimated cost minus small's for a toy prompt, as the planner estimates them
    (the prompts have the same recorded token count, so the same estimates)."""
    setup, table, _ = prepare(Request(policy, read_neutral(toy), route="smart"))
    ctx = contexts(setup, table)[0]
    scores = route_scores(policy.routes["smart"], table.texts[0], ctx.task)
    decision = plan(ctx, policy, EMPTY_STATS, scores)
    cost = {c.model: c.estimate.cost_usd for tier in decision.tiers for c in tier}
    return cost["big"] - cost["small"]


def test_a_score_minus_cost_route_sweeps_lambda(tmp_path: Path) -> None:
    """Predicted small/big: easy 0.95/0.99, hard 0.1/0.95. A prompt goes to small when
    lambda x (big's cost - small's) exceeds big's predicted lead: 0.04 on easy prompts, 0.85
    on hard ones. So lambda below 0.04/gap: all to big (quality 1, $10 a prompt); between
    0.04/gap and 0.85/gap: easy to small, hard to big (1, $5.5); above: all small (0.5, $1)."""
    toy = write_dataset(tmp_path / "toy")
    probe = _utility(tmp_path, 0.0)
    gap = _gap(probe, toy)
    low, high = 0.04 / gap, 0.85 / gap
    own = (low * high) ** 0.5  # between the breakpoints
    report = run(Request(_utility(tmp_path, own), read_neutral(toy), route="smart"))
    assert (report.line("policy").quality.mean, report.line("policy").cost) == (1.0, 5.5)
    curve = [x for x in report.lines if x.kind == "curve"]
    assert all(x.name.startswith("lambda ") for x in curve)
    settings = [x.setting for x in curve]
    assert settings[0] == 0.0 and own in settings and settings == sorted(settings)
    seen = set()
    for x in curve:
        assert x.setting is not None
        if min(abs(x.setting - b) for b in (low, high)) < 1e-9 * high:
            continue  # a tie at a breakpoint: the cheaper model, either region's point
        expected = (
            (1.0, 10.0) if x.setting < low else (1.0, 5.5) if x.setting < high else (0.5, 1.0)
        )
        assert (x.quality.mean, x.cost) == expected, x.name
        seen.add(expected)
    assert seen == {(1.0, 10.0), (1.0, 5.5), (0.5, 1.0)}  # the sweep spans all three regimes
    # AIQ over $1-$10: the hull (1, 0.5) -> (5.5, 1) -> flat, area (0.75 x 4.5 + 4.5) / 9; the
    # zero router's chord (1, 0.5) -> (10, 1): 0.75.
    assert report.aiq["policy"] == pytest.approx(0.875)
    assert report.aiq["zero_router"] == pytest.approx(0.75)
    assert report.targets[0].saving is not None
    assert report.targets[0].saving.mean == pytest.approx(0.45)


def test_the_lambda_curve_gives_the_pair_metrics(tmp_path: Path) -> None:
    toy = write_dataset(tmp_path / "toy")
    policy = _utility(tmp_path, 0.0)
    report = run(Request(policy, read_neutral(toy), route="smart", pair=("big-v1", "small-v1")))
    assert report.pair is not None
    # Shares of calls to big on the lambda curve: 1 (PGR 1), 0.5 (PGR 1), 0 (PGR 0).
    assert report.pair.apgr == pytest.approx(0.75)
    assert report.pair.cpt50 == pytest.approx(0.25)
    assert report.pair.cpt80 == pytest.approx(0.4)


class _Counting:
    def __init__(self, scorer: object) -> None:
        self.scorer = scorer
        self.calls = 0

    @property
    def models(self) -> tuple[str, ...]:
        return self.scorer.models  # type: ignore[attr-defined,no-any-return]

    def scores(self, text: str, task: str | None = None) -> dict[str, float]:
        self.calls += 1
        return dict(self.scorer.scores(text, task))  # type: ignore[attr-defined]


@pytest.mark.parametrize("rule", ["", "\n      rule: score_minus_cost\n      lambda: 0"])
def test_each_prompt_is_scored_once(tmp_path: Path, rule: str) -> None:
    """The policy as written, its curve and the pair's curve share one prediction per
    prompt."""
    toy = write_dataset(tmp_path / "toy")
    policy = load_policy(_learned(tmp_path, extra=rule))
    route = policy.routes["smart"]
    assert route.learned is not None
    counting = _Counting(route.learned.scorer)
    policy = swap_route(policy, replace(route, learned=replace(route.learned, scorer=counting)))
    report = run(Request(policy, read_neutral(toy), route="smart", pair=("big-v1", "small-v1")))
    assert len([x for x in report.lines if x.kind == "curve"]) > 10
    assert counting.calls == 8  # the toy set's eight prompts
