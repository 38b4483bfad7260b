"""Quality aggregates per (route or task, model, version): each group's interval is the one
``intervals.estimate`` gives its scores, the sources that contributed are named, and the
newest version of each (route, model) is the current one."""

from __future__ import annotations

from typing import Any

from modelroute.outcomes import Outcome, OutcomeSource
from modelroute.outcomes.aggregate import aggregate, current, score_rows
from modelroute.outcomes.intervals import estimate

T0 = 1_767_000_000.0


def o(n: int, score: float, **kw: Any) -> Outcome:
    fields: dict[str, Any] = {
        "source": OutcomeSource.EVAL, "grader": "exact", "score": score, "model": "small",
        "created_at": T0 + n, "prompt_id": f"p{n}", "route": "triage", "task": "classify",
        "reported_model": "small-2024-07-18",
    }  # fmt: skip
    return Outcome(**(fields | kw))


def test_one_aggregate_per_route_model_and_version_with_its_interval() -> None:
    old = [o(i, float(i % 2)) for i in range(40)]
    new = [o(100 + i, 1.0 if i % 4 else 0.0, reported_model="small-2024-09-01") for i in range(12)]
    shadow = [o(200 + i, 0.5 + i / 100, source=OutcomeSource.SHADOW, request_id=f"r{i}",
                reported_model="small-2024-09-01") for i in range(8)]  # fmt: skip
    large = [o(i, 1.0, model="large", reported_model=None) for i in range(5)]
    aggs = aggregate(score_rows([*old, *new, *shadow, *large]))
    assert [(a.model, a.version, a.current) for a in aggs] == [
        ("large", "large", True),  # no reported version: the policy's name stands for it
        ("small", "small-2024-09-01", True),
        ("small", "small-2024-07-18", False),
    ]
    _, newest, older = aggs
    assert older.interval == estimate([x.score for x in old]) and older.n == 40
    assert older.interval.method == "wilson" and older.sources == ("eval",)
    graded = [x.score for x in [*new, *shadow]]
    assert newest.interval == estimate(graded) and newest.interval.method == "bootstrap"
    assert newest.source_label == "eval+shadow"
    assert (newest.first_at, newest.last_at) == (T0 + 100, T0 + 207)
    assert current(aggs)[("triage", "small")] is newest


def test_the_current_version_is_the_one_the_newest_outcome_reports() -> None:
    # a rollback: the older version answers again after the newer one
    rows = score_rows([o(1, 1.0, reported_model="v1"), o(2, 0.0, reported_model="v2"),
                       o(3, 1.0, reported_model="v1")])  # fmt: skip
    assert current(aggregate(rows))[("triage", "small")].version == "v1"


def test_by_task_groups_by_task_and_leaves_out_outcomes_without_one() -> None:
    outcomes = [o(1, 1.0), o(2, 0.0, task="extract"), o(3, 1.0, task=None, prompt_id="x")]
    aggs = aggregate(score_rows(outcomes, "task"), "task")
    assert [(a.key, a.n) for a in aggs] == [("classify", 1), ("extract", 1)]
    assert aggs[0].to_dict()["task"] == "classify" and aggs[0].to_dict()["by"] == "task"


def test_describe_reads_as_explain_prints_it() -> None:
    rows = score_rows([o(i, float(i % 10 != 0)) for i in range(412)])
    [agg] = aggregate(rows)
    iv = agg.interval
    assert iv.half_width is not None and iv.mean is not None
    assert agg.describe() == (f"{iv.mean:.2f} ±{iv.half_width:.2f} (n=412, eval, small-2024-07-18)")
