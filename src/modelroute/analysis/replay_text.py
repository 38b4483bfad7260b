"""The replay report as text: a headline on reproduction, a table per route, the projection's
caveats and the records worth looking at."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelroute.analysis.replay import MAX_LISTED

_COLUMNS = (
    ("route", None),
    ("records", "records"),
    ("replayed", "replayed"),
    ("identical", "reproduced"),
    ("changed", "changed"),
    ("first model changed", "chosen_changed"),
    ("now infeasible", "now_infeasible"),
    ("now feasible", "now_feasible"),
    ("on priors", "planned_on_priors"),
    ("priced", "priced"),
    ("recorded $", "recorded_usd"),
    ("projected $", "projected_usd"),
    ("difference $", "difference_usd"),
)


def render_replay(report: Mapping[str, Any]) -> str:
    lines = _headline(report)
    rows = [_row(name, tally) for name, tally in report["routes"].items()]
    rows = [["(no route)", *r[1:]] if r[0] == "-" else r for r in rows]
    rows.append(_row("total", report["total"]))
    lines += ["", *_table([c for c, _ in _COLUMNS], rows), ""]
    lines += _projection(report)
    lines += _findings(report)
    return "\n".join(lines)


def _headline(report: Mapping[str, Any]) -> list[str]:
    policy, total = report["policy"], report["total"]
    version = f", version {policy['version']}" if policy.get("version") else ""
    lines = [f"policy: {policy['path']} (hash {policy['hash'][:12]}{version})"]
    skipped = report["not_replayable"]
    text = f"records: {total['records']}, replayed {total['replayed']}"
    if skipped:
        text += "; not replayable: " + ", ".join(f"{n} {why}" for why, n in skipped.items())
    lines.append(text)
    same = report["records_by_policy"].get(policy["hash"], 0)
    others = {h: n for h, n in report["records_by_policy"].items() if h != policy["hash"]}
    if same:
        replayed = total["same_policy"]
        reproduced = replayed - report["not_reproduced"]["count"]
        lines.append(
            f"recorded under this policy: {same} records; decisions reproduced: "
            f"{reproduced} of {replayed} replayed"
        )
    else:
        lines.append(
            "this policy's hash matches none of the records: a what-if replay of a new policy"
        )
    if others:
        listed = ", ".join(f"{h[:12] or '(none)'} ({n})" for h, n in others.items())
        lines.append(f"recorded under other policies: {listed}")
    return lines


def _money(value: float) -> str:
    return f"{value:+.6f}" if value else "0"


def _row(name: str, tally: Mapping[str, Any]) -> list[str]:
    cost = tally["cost"]
    cells = [name]
    for _, key in _COLUMNS[1:]:
        if key in ("recorded_usd", "projected_usd"):
            cells.append(f"{cost[key]:.6f}")
        elif key == "difference_usd":
            cells.append(_money(cost[key]))
        elif key == "priced":
            cells.append(str(cost["priced"]))
        else:
            cells.append(str(tally[key]))
    return cells


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return out


def _projection(report: Mapping[str, Any]) -> list[str]:
    total = report["total"]
    cost = total["cost"]
    lines = [
        f"{report['projection']}.",
        f"priced: {cost['priced']} of {total['replayed']} replayed records",
    ]
    for why, n in sorted(cost["unpriced"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  not priced: {n} {why}")
    if total["planned_on_priors"]:
        lines.append(
            f"{total['planned_on_priors']} records were planned on candidates whose statistics "
            "were not recorded (another route, or models the recorded route did not "
            "consider): their estimates use the policy's priors"
        )
    return lines


def _findings(report: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    missing = report["not_reproduced"]
    if missing["count"]:
        lines += ["", f"NOT reproduced under their own policy: {missing['count']}"]
        lines += [_finding(f) for f in missing["first"]]
    changed = report["changed_examples"]
    if changed:
        count = report["total"]["changed"]
        head = "changed decisions" + (
            f" (first {MAX_LISTED} of {count})" if count > MAX_LISTED else ""
        )
        lines += ["", f"{head}:"]
        lines += [_finding(f) for f in changed]
    return lines


def _finding(f: Mapping[str, Any]) -> str:
    return f"  {f['request_id']}: recorded {f['recorded']}; replayed {f['replayed']}" + (
        f"; first difference {f['difference']}" if f["difference"] else ""
    )
