"""Simulation on a tiny outcome set whose right answers are worked out by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelroute.analysis.simulate import Setup, SimulationError, read_neutral, simulate
from modelroute.analysis.simulate.report import report_dict
from modelroute.analysis.simulate.session import Request, prepare, run
from modelroute.analysis.simulate.splits import parts, select
from modelroute.policy import load_policy_text

from .support import CASCADE, CHEAPEST, PER_TASK, write_dataset


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "toy")


def test_routes_by_each_prompts_task_through_the_planner(toy: Path) -> None:
    # No route named: each prompt's category ("easy"/"hard") selects the route of that name.
    report = run(Request(load_policy_text(PER_TASK), read_neutral(toy)))
    own = report.line("policy")
    assert own.quality.mean == 1.0 and own.quality.n == 8
    assert own.cost == pytest.approx((4 * 1 + 4 * 10) / 8)
    assert report.best == "big-v1" and report.cheapest == "small-v1"
    # The oracle: every prompt right, each at the cheapest model that got it right.
    oracle = report.line("oracle")
    assert oracle.quality.mean == 1.0 and oracle.cost == pytest.approx(5.5)
    # At 95% and 98% of big's quality the policy itself is the cheapest point: 45% saved.
    for target in report.targets:
        assert target.line is not None and target.saving is not None
        assert target.saving.mean == pytest.approx(0.45)
    same, ratio = report.same_quality
    assert same == "big-v1" and ratio is not None and ratio.mean == pytest.approx(0.55)


def test_cheapest_qualified_sends_everything_to_the_cheap_model(toy: Path) -> None:
    report = run(Request(load_policy_text(CHEAPEST), read_neutral(toy), route="answer"))
    own = report.line("policy")
    assert own.quality.mean == 0.5 and own.cost == 1.0
    assert report.targets[0].line is None  # 0.5 never reaches 95% of 1.0
    low, high = own.quality.low, own.quality.high
    assert low is not None and high is not None and low < 0.5 < high


def test_cascade_with_a_perfect_verifier_escalates_exactly_the_wrong_answers(toy: Path) -> None:
    policy = load_policy_text(CASCADE)
    req = Request(policy, read_neutral(toy), route="answer", verifier_error=0.0)
    setup, table, dropped = prepare(req)
    routed = simulate(setup, table)
    assert dropped == 0
    assert routed.quality == 1.0
    assert routed.escalated == 4
    # Easy: small only ($1); hard: small then big ($11).
    assert routed.cost == pytest.approx((4 * 1 + 4 * 11) / 8)


def test_cascade_with_a_verifier_that_always_errs(toy: Path) -> None:
    req = Request(load_policy_text(CASCADE), read_neutral(toy), route="answer", verifier_error=1)
    setup, table, _ = prepare(req)
    routed = simulate(setup, table)
    # Right answers are escalated (still right, at $11) and wrong ones kept (wrong, at $1).
    assert routed.quality == 0.5 and routed.escalated == 4
    assert routed.cost == pytest.approx(6.0)


def test_cascade_without_confidence_or_verifier_is_counted_unverified(toy: Path) -> None:
    report = run(Request(load_policy_text(CASCADE), read_neutral(toy), route="answer"))
    assert report.line("policy").quality.mean == 0.5  # the first tier's answers, kept
    assert any("no recorded confidence" in note for note in report.notes)


def test_recorded_confidences_drive_a_cascade_and_its_sweep(toy: Path) -> None:
    policy = load_policy_text(CASCADE)
    setup, table, _ = prepare(Request(policy, read_neutral(toy), route="answer"))
    # Confidence 0.9 on the easy prompts' small answers, 0.3 on the hard ones.
    conf = np.full((len(table), len(table.models)), np.nan)
    small = table.column("small-v1")
    conf[:, small] = [0.9 if t == "easy" else 0.3 for t in table.tasks]
    with_conf = Setup(setup.policy, "answer", setup.columns, confidences={"verifier": conf})
    assert simulate(with_conf, table).quality == 1.0  # threshold 0.5 splits them exactly
    from modelroute.analysis.simulate.session import curve

    swept = {r.setting: (r.quality, r.cost) for r in curve(with_conf, table)}
    assert swept[0.0] == (0.5, 1.0)  # nothing escalates
    assert swept[0.5] == (1.0, 6.0)
    assert swept[1.0] == (1.0, 11.0)  # everything escalates


def test_the_pair_metrics_of_a_task_router(toy: Path) -> None:
    req = Request(load_policy_text(PER_TASK), read_neutral(toy), pair=("big-v1", "small-v1"))
    report = run(req)
    assert report.pair is not None
    # One point: half the calls to big for PGR 1. Curve (0,0) (0.5,1) (1,1): area 0.75.
    assert report.pair.apgr == pytest.approx(0.75)
    assert report.pair.cpt50 == pytest.approx(0.25)
    assert report.line("policy").strong_share == 0.5


def test_a_model_missing_from_the_data_is_an_error(toy: Path) -> None:
    text = CHEAPEST.replace("model_id: big-v1", "model_id: huge-v1")
    with pytest.raises(SimulationError, match="no outcomes for big"):
        run(Request(load_policy_text(text), read_neutral(toy), route="answer"))


def test_prompts_a_model_lacks_are_dropped_and_counted(tmp_path: Path) -> None:
    toy = write_dataset(tmp_path / "toy", skip=("hard-0", "big-v1"))
    report = run(Request(load_policy_text(PER_TASK), read_neutral(toy)))
    assert report.prompts == 7 and report.dropped == 1


def test_the_datas_own_split_column_is_kept(tmp_path: Path) -> None:
    split = {
        f"{t}-{i}": ("test" if i == 0 else "train") for t in ("easy", "hard") for i in range(4)
    }
    table = read_neutral(write_dataset(tmp_path / "toy", split=split))
    assert set(select(table, "test").ids) == {"easy-0", "hard-0"}
    labels = parts(table)
    assert {labels[table.ids.index(p)] for p in ("easy-1", "easy-2", "easy-3")} <= {
        "train",
        "validation",
    }
    report = run(Request(load_policy_text(PER_TASK), table, split="test"))
    assert report.prompts == 2
    assert report_dict(report)["split"] == "test"
