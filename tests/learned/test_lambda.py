"""The ``score_minus_cost`` rule: lambda calibrated on validation by ``train``, the planner's
order by predicted score - lambda x estimated cost, ``check``/``explain``, and records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from modelroute.cli import main
from modelroute.errors import PolicyError
from modelroute.learned import decide
from modelroute.learned.calibrate import calibrate_lambda, choose_utility
from modelroute.learned.data import load_outcomes
from modelroute.learned.format import load_router
from modelroute.learned.train import train, write
from modelroute.planner.context import RequestContext
from modelroute.policy.load import load_policy
from tests.learned.support import (
    category_router,
    easy_prompt,
    hard_prompt,
    policy_yaml,
    write_outcomes,
)

RULE = "router: router.npz\n      rule: score_minus_cost"


def _policy(tmp_path: Path, extra: str = "") -> Path:
    category_router(tmp_path / "router.npz")
    path = tmp_path / "policy.yaml"
    path.write_text(policy_yaml().replace("router: router.npz", RULE + extra))
    return path


def ctx(task: str | None) -> RequestContext:
    return RequestContext(requested="smart", task=task, prompt_tokens=1000)


def test_lambda_calibration_on_a_hand_computed_case() -> None:
    # cheap (cost 1) is right on prompts 0-1 only; strong (cost 10) on all. Prompt i goes to
    # cheap when pred_cheap - l > 0.9 - 10 l, i.e. l > (0.9 - pred_cheap) / 9.
    pred = np.array([[0.9, 0.9], [0.7, 0.9], [0.5, 0.9], [0.2, 0.9]])
    score = np.array([[1, 1], [1, 1], [0, 1], [0, 1]], float)
    cost = np.array([[1, 10]] * 4, float)
    order = np.array([0, 1])
    assert choose_utility(pred, cost, order, 0.0).tolist() == [0, 1, 1, 1]  # a tie: cheaper
    assert choose_utility(pred, cost, order, 0.03).tolist() == [0, 0, 1, 1]
    cal = calibrate_lambda(pred, score, cost, order, ("cheap", "strong"), target=0.95)
    assert cal.met and cal.quality == 1.0 and cal.cost == pytest.approx(5.5)
    assert cal.lam is not None and 0.2 / 9 < cal.lam <= 0.4 / 9
    assert cal.rule == "score_minus_cost" and cal.setting.startswith("lambda ")
    loose = calibrate_lambda(pred, score, cost, order, ("cheap", "strong"), target=0.5)
    assert loose.cost == 1.0 and loose.quality == 0.5
    assert loose.lam is not None and loose.lam > 0.7 / 9


def test_planner_orders_by_score_minus_lambda_cost(tmp_path: Path) -> None:
    scores = {"cheap": 0.3, "mid": 0.8, "strong": 0.9}  # the category router's "medium" row
    for lam, first in ((0.0, "strong"), (1e9, "cheap")):
        path = _policy(tmp_path, f"\n      lambda: {lam}")
        decision = decide(ctx("medium"), "x", load_policy(path))
        costs = {c.model: c.estimate.cost_usd for t in decision.tiers for c in t}
        utility = {m: scores[m] - lam * costs[m] for m in scores}
        assert decision.order == tuple(sorted(utility, key=lambda m: -utility[m]))
        assert decision.chosen == first
        assert decision.learned is not None
        assert (decision.learned.rule, decision.learned.lam) == ("score_minus_cost", lam)
        assert decision.to_dict()["learned"]["lambda"] == lam
    # between the two: mid's 0.5 points over cheap are worth its extra cost, strong's 0.1
    # over mid are not
    policy = load_policy(_policy(tmp_path, "\n      lambda: 0"))
    costs = {c.model: c.estimate.cost_usd for t in decide(ctx("medium"), "x", policy).tiers
             for c in t}  # fmt: skip
    lam = 0.2 / (costs["strong"] - costs["mid"])  # 0.1 points < lam x strong's extra cost
    assert lam * (costs["mid"] - costs["cheap"]) < 0.5
    middle = decide(ctx("medium"), "x", load_policy(_policy(tmp_path, f"\n      lambda: {lam}")))
    assert middle.order == ("mid", "strong", "cheap")


def test_score_minus_cost_without_a_lambda_is_a_located_error(tmp_path: Path) -> None:
    path = _policy(tmp_path)  # the hand-made router file has no calibrated lambda
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    text = str(info.value)
    assert "policy.yaml:" in text and "needs a lambda" in text and "set lambda:" in text


def test_a_negative_lambda_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="lambda"):
        load_policy(_policy(tmp_path, "\n      lambda: -1"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("lam")
    write_outcomes(directory / "outcomes")
    result = CliRunner().invoke(
        main, ["train", "--outcomes", str(directory / "outcomes"), "--out",
               str(directory / "router.npz"), "--kind", "knn", "--rule", "score_minus_cost"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "lambda " in result.output and "/USD" in result.output
    return directory


def test_train_calibrates_lambda_and_the_route_uses_it(trained: Path) -> None:
    router = load_router(trained / "router.npz")
    assert router.lam is not None and router.lam > 0
    assert router.header["rule"] == "score_minus_cost"
    assert router.header["validation"]["knn"]["score_minus_cost"]["met"] is True
    (trained / "policy.yaml").write_text(policy_yaml().replace("router: router.npz", RULE))
    policy = load_policy(trained / "policy.yaml")
    rule = policy.routes["smart"].learned
    assert rule is not None and rule.lam == router.lam and rule.lambda_source == "calibrated"
    plain = RequestContext(requested="smart", prompt_tokens=50)
    assert decide(plain, easy_prompt(7000), policy).chosen == "cheap"
    assert decide(plain, hard_prompt(7001), policy).chosen == "strong"


def test_both_rules_are_calibrated_whichever_chooses_the_kind(tmp_path: Path) -> None:
    write_outcomes(tmp_path / "o", n=200)
    data = load_outcomes(tmp_path / "o")
    by_threshold = train(data, ("category",), rule="threshold")
    trial = by_threshold.chosen
    assert trial.calibration is trial.threshold and trial.lam.lam is not None
    write(by_threshold, tmp_path / "r.npz")
    header = load_router(tmp_path / "r.npz").header
    assert header["lambda"] == trial.lam.lam and header["threshold"] == trial.threshold.threshold
    with pytest.raises(ValueError, match="rule"):
        train(data, ("category",), rule="cheapest")


def test_check_and_explain_show_lambda_and_utilities(trained: Path) -> None:
    policy = trained / "policy.yaml"
    policy.write_text(policy_yaml().replace("router: router.npz", RULE + "\n      lambda: 50"))
    runner = CliRunner()
    checked = runner.invoke(main, ["check", str(policy)])
    assert checked.exit_code == 0, checked.output
    assert "score - 50 x cost (lambda policy)" in checked.output
    request = trained / "request.json"
    body = {"model": "smart", "messages": [{"role": "user", "content": hard_prompt(3)}]}
    request.write_text(json.dumps({"body": body}))
    shown = runner.invoke(main, ["explain", str(policy), "--request", str(request)])
    assert shown.exit_code == 0, shown.output
    assert "rule score_minus_cost, lambda 50 per USD" in shown.output
    line = next(x for x in shown.output.splitlines() if x.startswith("  strong: "))
    score, rest = line.removeprefix("  strong: ").split(" - 50 x $")
    cost, utility = rest.split(" = ")
    assert float(utility) == pytest.approx(float(score) - 50 * float(cost), abs=2e-3)


async def test_a_stored_record_keeps_the_rule_lambda_and_scores(tmp_path: Path) -> None:
    import time

    from modelroute.records.record import DecisionView, RequestRecord
    from modelroute.records.stores.sqlite import SqliteStore

    policy = load_policy(_policy(tmp_path, "\n      lambda: 25"))
    decision = decide(ctx("medium"), "x", policy)
    record = RequestRecord(
        request_id="r1", started_at=time.time(), route="smart", policy_hash=policy.hash,
        decision=DecisionView(decision),
    )  # fmt: skip
    store = SqliteStore(tmp_path / "records.db")
    await store.open()
    try:
        await store.write([record])
        stored = await store.get("r1")
    finally:
        await store.close()
    assert stored is not None
    learned = stored["decision"]["learned"]
    assert learned == decision.to_dict()["learned"]
    assert learned["rule"] == "score_minus_cost" and learned["lambda"] == 25
    assert learned["scores"] == pytest.approx({"cheap": 0.3, "mid": 0.8, "strong": 0.9})
