"""Two provider-reported versions compared per task, from outcomes."""

from __future__ import annotations

from modelroute.evaluation import compare_versions
from modelroute.outcomes import Outcome, OutcomeSource


def _outcomes(version: str, task: str, right: int, total: int) -> list[Outcome]:
    return [
        Outcome(
            source=OutcomeSource.EVAL,
            grader="exact",
            score=1.0 if i < right else 0.0,
            model="small",
            created_at=0.0,
            prompt_id=f"{task}-{i}",
            task=task,
            reported_model=version,
            run=version,
        )
        for i in range(total)
    ]


def test_per_task_difference_with_interval() -> None:
    outcomes = [
        *_outcomes("v1", "math", 80, 100),
        *_outcomes("v2", "math", 50, 100),
        *_outcomes("v1", "chat", 60, 100),
        *_outcomes("v2", "chat", 61, 100),
        *_outcomes("v1", "rare", 5, 5),
        *_outcomes("v2", "rare", 0, 5),
        *_outcomes("v3", "math", 100, 100),  # another version: not part of the comparison
    ]
    report = compare_versions(outcomes, "v1", "v2")
    rows = {r["task"]: r for r in report["tasks"]}
    math_row = rows["math"]
    assert math_row["verdict"] == "worse" and abs(math_row["difference"] + 0.30) < 1e-9
    assert math_row["low"] < -0.30 < math_row["high"] < 0
    assert rows["chat"]["verdict"] == "no difference shown"
    assert rows["chat"]["low"] < 0 < rows["chat"]["high"]
    assert rows["rare"]["verdict"] == "not enough evidence" and rows["rare"]["difference"] is None
    assert rows["rare"]["old"] == "1.00 ±0.22 (n=5)"
