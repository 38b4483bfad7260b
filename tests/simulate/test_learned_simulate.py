"""A learned route simulated through the shared decide path, its threshold swept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelroute.analysis.simulate import read_neutral
from modelroute.analysis.simulate.session import Request, run
from modelroute.learned.format import save_router
from modelroute.policy import load_policy

from .support import MODELS, write_dataset


def _learned(tmp_path: Path, threshold: float | None = None) -> Path:
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
