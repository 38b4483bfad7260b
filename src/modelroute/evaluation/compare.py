"""Two provider-reported versions of a model, compared task by task.

For each task, the difference in mean score (new minus old) with its bootstrap interval
(``outcomes.intervals.difference``). With fewer than ``min_samples`` outcomes on either
side the answer is "not enough evidence", and an interval that straddles 0 says no
difference was shown, whatever the point estimate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelroute.outcomes import Outcome
from modelroute.outcomes.intervals import difference, estimate

MIN_SAMPLES = 20  # per version and task, before a difference is reported


def compare_versions(
    outcomes: Iterable[Outcome], old: str, new: str, min_samples: int = MIN_SAMPLES
) -> dict[str, Any]:
    scores: dict[str, dict[str, list[float]]] = {}
    for outcome in outcomes:
        if outcome.version in (old, new):
            by_version = scores.setdefault(outcome.task or "(none)", {old: [], new: []})
            by_version[outcome.version].append(outcome.score)
    tasks = []
    for task, by_version in sorted(scores.items()):
        before, after = by_version[old], by_version[new]
        row: dict[str, Any] = {
            "task": task,
            "old": estimate(before).describe(),
            "new": estimate(after).describe(),
            "n_old": len(before),
            "n_new": len(after),
        }
        if min(len(before), len(after)) < min_samples:
            row.update(difference=None, low=None, high=None, verdict="not enough evidence")
        else:
            diff = difference(before, after)
            assert diff.mean is not None and diff.low is not None and diff.high is not None
            row.update(
                difference=diff.mean,
                low=diff.low,
                high=diff.high,
                verdict=_verdict(diff.low, diff.high),
            )
        tasks.append(row)
    return {"old": old, "new": new, "min_samples": min_samples, "tasks": tasks}


def _verdict(low: float, high: float) -> str:
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "no difference shown"


def render_comparison(report: dict[str, Any]) -> str:
    old, new = report["old"], report["new"]
    if not report["tasks"]:
        return f"no outcomes of {old} or {new} (check the versions with `modelroute outcomes`)"
    table = [["task", old, new, "new - old (95% interval)", "verdict"]]
    for row in report["tasks"]:
        if row["difference"] is None:
            change = "-"
        else:
            change = f"{row['difference']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}]"
        table.append([row["task"], row["old"], row["new"], change, row["verdict"]])
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    lines.append(
        f"each version's mean score ±half its 95% interval; a difference needs at least "
        f"{report['min_samples']} outcomes of each version on the task"
    )
    return "\n".join(lines)
