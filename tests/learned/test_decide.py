"""The shared path from a request to a Decision for learned routes (``decide``), the
planner's order by predicted scores, and loading router files with a policy."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modelroute.errors import PolicyError
from modelroute.learned import decide, prompt_text
from modelroute.planner.context import Limits, RequestContext
from modelroute.planner.plan import plan
from modelroute.policy.load import load_policy
from tests.learned.support import category_router, policy_yaml


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    category_router(tmp_path / "router.npz")
    path = tmp_path / "policy.yaml"
    path.write_text(policy_yaml())
    return path


def ctx(task: str | None, **limits: float) -> RequestContext:
    return RequestContext(requested="smart", task=task, prompt_tokens=100, limits=Limits(**limits))


def test_cheapest_model_clearing_the_threshold_goes_first(policy_file: Path) -> None:
    policy = load_policy(policy_file)
    easy = decide(ctx("easy"), "2+2?", policy)
    assert easy.order == ("cheap", "mid", "strong")  # every one clears: by cost
    medium = decide(ctx("medium"), "x", policy)
    assert medium.order == ("mid", "strong", "cheap")
    assert medium.tiers[0][0].estimate.quality_source == "predicted"
    assert medium.tiers[0][0].estimate.quality == pytest.approx(0.8)


def test_nothing_clears_the_threshold_highest_prediction_first(policy_file: Path) -> None:
    decision = decide(ctx("hard"), "x", load_policy(policy_file))
    assert decision.order == ("strong", "mid", "cheap")


def test_unknown_category_uses_the_overall_means(policy_file: Path) -> None:
    decision = decide(ctx(None), "x", load_policy(policy_file))
    assert decision.order == ("strong", "mid", "cheap")  # priors 0.4 / 0.6 / 0.8, below 0.7
    assert decision.learned is not None
    assert dict(decision.learned.scores)["mid"] == pytest.approx(0.6)


def test_policy_threshold_overrides_the_calibrated_one(tmp_path: Path) -> None:
    category_router(tmp_path / "router.npz", threshold=0.7)
    path = tmp_path / "p.yaml"
    path.write_text(
        policy_yaml().replace("router: router.npz", "router: router.npz\n      threshold: 0.25")
    )
    decision = decide(ctx("medium"), "x", load_policy(path))
    assert decision.order[0] == "cheap"
    assert decision.learned is not None and decision.learned.threshold_source == "policy"


def test_min_quality_applies_to_predicted_scores(policy_file: Path) -> None:
    decision = decide(ctx("medium", min_quality=0.85), "x", load_policy(policy_file))
    assert decision.order == ("strong",)
    assert {r.model for r in decision.rejections} == {"cheap", "mid"}


def test_the_router_hash_is_on_the_decision_and_in_the_policy_hash(
    policy_file: Path, tmp_path: Path
) -> None:
    policy = load_policy(policy_file)
    digest = hashlib.sha256((tmp_path / "router.npz").read_bytes()).hexdigest()
    decision = decide(ctx("easy"), "x", policy)
    assert decision.learned is not None and decision.learned.router_hash == digest
    assert decision.to_dict()["learned"]["scores"]["cheap"] == pytest.approx(0.9)
    category_router(tmp_path / "router.npz", threshold=0.5)  # retrained: same path
    assert load_policy(policy_file).hash != policy.hash


def test_plan_without_scores_orders_by_objective_and_says_so(policy_file: Path) -> None:
    decision = plan(ctx("easy"), load_policy(policy_file))
    assert decision.order == ("cheap", "mid", "strong")  # min_cost
    assert decision.learned is None
    assert any("no predicted scores" in n for n in decision.notes)


def test_text_is_read_only_for_learned_routes(policy_file: Path) -> None:
    policy = load_policy(policy_file)
    other = RequestContext(requested="strong", prompt_tokens=10)

    def boom() -> str:
        raise AssertionError("read")

    assert decide(other, boom, policy).order == ("strong",)
    assert decide(ctx("easy"), lambda: "x", policy).order[0] == "cheap"


def test_prompt_text_is_the_last_user_message() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
        ]
    }
    assert prompt_text(body) == "a\nb"
    assert prompt_text({"input": "hi"}) == "hi"
    assert prompt_text({"messages": "nope"}) == ""


def _problem(path: Path) -> str:
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    return str(info.value)


def test_missing_router_file_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy_yaml(router="nope.npz"))
    text = _problem(path)
    assert "policy.yaml:28" in text and "router file not found" in text


def test_corrupt_router_file_is_a_located_error(tmp_path: Path) -> None:
    (tmp_path / "router.npz").write_bytes(b"PK\x03\x04 truncated")
    path = tmp_path / "policy.yaml"
    path.write_text(policy_yaml())
    text = _problem(path)
    assert "policy.yaml:28" in text and "not a readable router file" in text
    assert "retrain" in text


def test_router_missing_a_route_model_is_a_located_error(tmp_path: Path) -> None:
    category_router(tmp_path / "router.npz", models=("cheap", "mid"))
    path = tmp_path / "policy.yaml"
    path.write_text(policy_yaml())
    text = _problem(path)
    assert "policy.yaml:27" in text and "'strong' has no scores" in text


def test_check_and_explain_show_the_router_and_predicted_scores(
    policy_file: Path, tmp_path: Path
) -> None:
    import json

    from click.testing import CliRunner

    from modelroute.cli import main

    runner = CliRunner()
    checked = runner.invoke(main, ["check", str(policy_file)])
    assert checked.exit_code == 0, checked.output
    assert "router: router.npz (category, sha256 " in checked.output
    assert "threshold 0.700 (calibrated for 95% of the best quality)" in checked.output
    request = tmp_path / "request.json"
    body = {"model": "smart", "messages": [{"role": "user", "content": "hi"}]}
    request.write_text(json.dumps({"body": body, "headers": {"x-modelroute-task": "medium"}}))
    shown = runner.invoke(main, ["explain", str(policy_file), "--request", str(request)])
    assert shown.exit_code == 0, shown.output
    assert "chosen: mid" in shown.output
    assert "quality 0.800 (predicted)" in shown.output
    assert "  cheap: 0.300 (below)" in shown.output and "  mid: 0.800 (clears)" in shown.output


def test_check_reports_a_bad_router_file_with_exit_2(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from modelroute.cli import main

    (tmp_path / "router.npz").write_bytes(b"not a zip")
    (tmp_path / "policy.yaml").write_text(policy_yaml())
    result = CliRunner().invoke(main, ["check", str(tmp_path / "policy.yaml")])
    assert result.exit_code == 2
    assert "policy.yaml:28" in result.output and "routes.smart.strategy.router" in result.output
