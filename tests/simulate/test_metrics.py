"""The metric definitions against small cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from modelroute.analysis.simulate import metrics


def test_frontier_drops_points_under_the_chord_and_dominated_ones() -> None:
    # C (2, 0.6) lies under the chord A-B (0.7 at cost 2); D costs more than B for less.
    points = [(1.0, 0.5), (3.0, 0.9), (2.0, 0.6), (4.0, 0.8)]
    assert metrics.frontier(points) == [(1.0, 0.5), (3.0, 0.9)]


def test_frontier_keeps_a_point_above_the_chord() -> None:
    points = [(1.0, 0.5), (2.0, 0.8), (3.0, 0.9)]
    assert metrics.frontier(points) == points


def test_aiq_over_the_models_own_range() -> None:
    # The frontier (1, 0.5)-(3, 0.9): a trapezoid of area 1.4 over a width of 2.
    points = [(1.0, 0.5), (3.0, 0.9), (2.0, 0.6)]
    assert metrics.aiq(points, 1.0, 3.0) == pytest.approx(0.7)


def test_aiq_is_zero_below_the_cheapest_point_and_flat_beyond_the_dearest() -> None:
    # 0 on [0, 1), 1.4 on [1, 3], 0.9 on (3, 4]: (0 + 1.4 + 0.9) / 4.
    points = [(1.0, 0.5), (3.0, 0.9)]
    assert metrics.aiq(points, 0.0, 4.0) == pytest.approx(0.575)


def test_aiq_of_a_single_point() -> None:
    # 0 up to cost 2, then 0.8 to cost 4: 1.6 / 4.
    assert metrics.aiq([(2.0, 0.8)], 0.0, 4.0) == pytest.approx(0.4)


def test_aiq_needs_a_range() -> None:
    with pytest.raises(ValueError):
        metrics.aiq([(1.0, 0.5)], 1.0, 1.0)


def test_frontier_quality_and_cost_lookups() -> None:
    front = [(1.0, 0.5), (3.0, 0.9)]
    assert metrics.quality_at(front, 2.0) == pytest.approx(0.7)
    assert metrics.quality_at(front, 0.5) is None
    assert metrics.quality_at(front, 10.0) == pytest.approx(0.9)
    assert metrics.cost_at(front, 0.8) == pytest.approx(2.5)
    assert metrics.cost_at(front, 0.4) == 1.0
    assert metrics.cost_at(front, 0.95) is None


def test_apgr_and_cpt_by_hand() -> None:
    # weak 0.5, strong 0.9. Points: 20% strong calls -> 0.7 (PGR 0.5); 50% -> 0.85 (0.875).
    # PGR curve (0,0) (0.2,0.5) (0.5,0.875) (1,1):
    # area 0.2*0.25 + 0.3*0.6875 + 0.5*0.9375 = 0.05 + 0.20625 + 0.46875 = 0.725.
    shares, qualities = [0.2, 0.5], [0.7, 0.85]
    assert metrics.apgr(shares, qualities, 0.5, 0.9) == pytest.approx(0.725)
    assert metrics.cpt(shares, qualities, 0.5, 0.9, 0.5) == pytest.approx(0.2)
    # PGR 0.8 between (0.2, 0.5) and (0.5, 0.875): 0.2 + 0.3 * 0.3 / 0.375.
    assert metrics.cpt(shares, qualities, 0.5, 0.9, 0.8) == pytest.approx(0.44)


def test_random_routing_has_apgr_one_half() -> None:
    shares = [i / 10 for i in range(11)]
    qualities = [0.5 + 0.4 * s for s in shares]
    assert metrics.apgr(shares, qualities, 0.5, 0.9) == pytest.approx(0.5)
    assert metrics.cpt(shares, qualities, 0.5, 0.9, 0.8) == pytest.approx(0.8)


def test_pgr_needs_different_models() -> None:
    with pytest.raises(ValueError):
        metrics.pgr(0.7, 0.8, 0.8)


def test_oracle_takes_the_best_score_at_the_cheapest_cost_reaching_it() -> None:
    scores = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    costs = np.array([[3.0, 1.0, 2.0], [3.0, 1.0, 2.0], [1.0, 5.0, 2.0]])
    best, cost = metrics.oracle(scores, costs)
    assert best.tolist() == [1.0, 0.0, 1.0]
    # Row 2: nobody is right, so the cheapest model; row 3: the cheaper of the two right.
    assert cost.tolist() == [1.0, 1.0, 2.0]


def test_cheapest_reaching() -> None:
    points = {"a": (1.0, 0.5), "b": (2.0, 0.8), "c": (3.0, 0.9)}
    assert metrics.cheapest_reaching(points, 0.7) == "b"
    assert metrics.cheapest_reaching(points, 0.95) is None


def test_aiq_gain_interval_over_prompts() -> None:
    from modelroute.analysis.simulate.report import aiq_gain
    from modelroute.analysis.simulate.run import Routed

    rng = np.random.default_rng(1)
    right = (rng.random(400) < 0.5).astype(float)
    cheap = Routed("cheap", right, np.full(400, 1.0), {})
    strong = Routed("strong", np.ones(400), np.full(400, 10.0), {})
    # A router that knows which prompts the cheap model gets right: strong's quality at
    # about half its cost, far above the zero router's line between the two. Its curve runs
    # from all-cheap (threshold 0) to that point: AIQ about (3.375 + 4.5) / 9 = 0.875 against
    # the zero router's 0.75.
    ideal = Routed("ideal", np.ones(400), np.where(right == 1, 1.0, 10.0), {})
    found = aiq_gain([cheap, ideal], [cheap, strong], 1.0, 10.0)
    assert found.mean is not None and found.low is not None and found.high is not None
    assert 0 < found.low <= found.mean <= found.high
    assert found.mean == pytest.approx(0.125, abs=0.02)
    # One point alone gets no credit below its cost (RouterBench's definition): a loss.
    alone = aiq_gain([ideal], [cheap, strong], 1.0, 10.0)
    assert alone.mean is not None and alone.mean < 0
    # The zero router against itself gains nothing, exactly, in every resample.
    same = aiq_gain([cheap, strong], [cheap, strong], 1.0, 10.0)
    assert same.mean == same.low == same.high == 0.0
