"""train -> save -> load -> route, on a synthetic outcome set whose right routing is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from modelroute.cli import main
from modelroute.learned import decide
from modelroute.learned.calibrate import calibrate, choose
from modelroute.learned.data import OutcomeDataError, load_outcomes, split_of
from modelroute.learned.format import RouterFileError, load_router
from modelroute.learned.train import train, write
from modelroute.planner.context import RequestContext
from modelroute.policy.load import load_policy
from tests.learned.support import easy_prompt, hard_prompt, policy_yaml, write_outcomes


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("syn")
    write_outcomes(directory)
    return directory


def test_split_is_seeded_and_respects_a_given_split() -> None:
    ids = [f"p{i}" for i in range(2000)]
    splits = [split_of(i, 7) for i in ids]
    assert splits == [split_of(i, 7) for i in ids]
    assert splits != [split_of(i, 8) for i in ids]
    share = splits.count("train") / len(ids)
    assert 0.55 < share < 0.65
    assert split_of("x", 0, "test") == "test"
    assert {split_of(i, 0, "train") for i in ids} == {"train", "validation"}


@pytest.mark.parametrize("kind", ["knn", "linear", "mf", "category"])
def test_each_kind_learns_the_known_routing(outcomes: Path, tmp_path: Path, kind: str) -> None:
    data = load_outcomes(outcomes)
    trained = train(data, (kind,), target=0.95)
    assert trained.chosen.calibration.met
    write(trained, tmp_path / "r.npz")
    scorer = load_router(tmp_path / "r.npz").scorer
    task = {"category": ("easy", "hard")}.get(kind, (None, None))
    easy = scorer.scores(easy_prompt(1000), task[0])
    hard = scorer.scores(hard_prompt(1001), task[1])
    assert easy["cheap"] > 0.8 > hard["cheap"] + 0.3
    assert hard["strong"] > 0.8


def test_train_command_then_route(outcomes: Path, tmp_path: Path) -> None:
    out = tmp_path / "router.npz"
    result = CliRunner().invoke(
        main, ["train", "--outcomes", str(outcomes), "--models", "cheap,mid,strong",
               "--out", str(out), "--kind", "knn"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "knn *" in result.output and "quality [95% CI]" in result.output
    (tmp_path / "policy.yaml").write_text(policy_yaml())
    policy = load_policy(tmp_path / "policy.yaml")
    ctx = RequestContext(requested="smart", prompt_tokens=50)
    assert decide(ctx, easy_prompt(5000), policy).chosen == "cheap"
    assert decide(ctx, hard_prompt(5001), policy).chosen == "strong"


def test_train_command_bad_input_exits_2(outcomes: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["train", "--outcomes", str(tmp_path), "--out", "x.npz"])
    assert missing.exit_code == 2 and "prompts.jsonl.gz" in missing.output
    unknown = runner.invoke(
        main, ["train", "--outcomes", str(outcomes), "--models", "cheap,gpt-9", "--out", "x"]
    )
    assert unknown.exit_code == 2 and "gpt-9" in unknown.output


def test_unknown_model_is_an_outcome_data_error(outcomes: Path) -> None:
    with pytest.raises(OutcomeDataError, match="unknown model"):
        load_outcomes(outcomes, ["cheap", "nope"])


def test_calibration_picks_the_cheapest_threshold_meeting_the_target() -> None:
    # 4 prompts, 2 models (cheap first): cheap right on prompts 0-1 only, strong on all.
    pred = np.array([[0.9, 0.9], [0.7, 0.9], [0.5, 0.9], [0.2, 0.9]])
    score = np.array([[1, 1], [1, 1], [0, 1], [0, 1]], float)
    cost = np.array([[1, 10]] * 4, float)
    order = np.array([0, 1])
    assert choose(pred, order, 0.6).tolist() == [0, 0, 1, 1]
    cal = calibrate(pred, score, cost, order, ("cheap", "strong"), target=0.95)
    assert cal.met and cal.quality == 1.0 and cal.cost == pytest.approx(5.5)
    assert 0.5 < cal.threshold <= 0.7
    loose = calibrate(pred, score, cost, order, ("cheap", "strong"), target=0.5)
    assert loose.cost == 1.0 and loose.quality == 0.5


def test_a_file_with_wrong_arrays_is_refused(outcomes: Path, tmp_path: Path) -> None:
    trained = train(load_outcomes(outcomes), ("linear",))
    trained.chosen.fitted.arrays["w"] = trained.chosen.fitted.arrays["w"][:, :2]
    write(trained, tmp_path / "bad.npz")
    with pytest.raises(RouterFileError, match="'w'"):
        load_router(tmp_path / "bad.npz")
