"""``modelroute replay`` on traffic recorded through the real router, on SQLite and PostgreSQL:
under the recording policy every decision comes out again exactly; under a new policy the
report counts what changes per route and projects the cost from the recorded usage."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelroute.outcomes import Outcome, OutcomeSource
from modelroute.pricing import cost_of
from modelroute.records.record import RequestRecord
from modelroute.records.stores.base import Store
from modelroute.types import Usage

from .conftest import make_store, realistic
from .replay_traffic import record_traffic

MODELROUTE = Path(sys.executable).parent / "modelroute"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MODELROUTE), *args], capture_output=True, text=True, timeout=300, check=False
    )


async def stored(target: Path | str) -> list[dict[str, Any]]:
    store = make_store(target)
    await store.open()
    try:
        return [r async for page in store.scan() for r in page]
    finally:
        await store.close()


def mix(records: list[dict[str, Any]]) -> Counter[str]:
    """What kinds of decision the recorded traffic holds."""
    seen: Counter[str] = Counter()
    for r in records:
        d, pi = r["decision"], r["planner_input"]
        seen["with planner input"] += pi is not None
        seen[f"status {r['status']}"] += 1
        if any(v is not None for v in (pi or {}).get("limits", {}).values()):
            seen["per-request limits"] += 1
        if pi and (pi["stats"]["models"] or pi["stats"]["routes"]):
            seen["measured statistics"] += 1
        if pi and pi["stats"]["open_circuits"]:
            seen["open circuits"] += 1
        for reason in {x["reason"] for x in (d or {}).get("rejections", [])}:
            seen[reason] += 1
        candidates = [c for tier in (d or {}).get("tiers", []) for c in tier]
        seen["measured quality"] += any(c["quality_source"] == "measured" for c in candidates)
        seen["relaxed"] += bool((d or {}).get("relaxed"))
        seen[f"selected by {r['selected_by']}"] += 1
    return seen


async def test_replay_reproduces_every_recorded_decision(
    store_target: Path | str, tmp_path: Path
) -> None:
    policy_file, policy = await record_traffic(make_store(store_target), tmp_path, 1000)
    records = await stored(store_target)
    assert len(records) == 1000
    seen = mix(records)
    assert seen["with planner input"] == 1000
    for kind, at_least in {
        "status infeasible": 30, "status rejected": 10, "status failed": 3,
        "per-request limits": 100, "measured statistics": 500, "open circuits": 10,
        "circuit_open": 10, "context_too_small": 50, "missing_capability": 20,
        "over_latency_budget": 5, "below_min_quality": 50, "measured quality": 50,
        "relaxed": 20, "selected by match": 20, "selected by task": 30, "selected by model": 20,
    }.items():  # fmt: skip
        assert seen[kind] >= at_least, (kind, seen)
    distinct_stats = {json.dumps(r["planner_input"]["stats"], sort_keys=True) for r in records}
    assert len(distinct_stats) >= 50  # the statistics changed while the records arrived

    result = cli("replay", "--store", str(store_target), "--policy", str(policy_file), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["records_by_policy"] == {policy.hash: 1000}
    total = report["total"]
    assert (total["records"], total["replayed"], total["same_policy"]) == (1000, 1000, 1000)
    assert total["reproduced"] == 1000 and report["not_reproduced"]["count"] == 0
    assert total["changed"] == 0 and total["chosen_changed"] == 0

    text = cli("replay", "--store", str(store_target), "--policy", str(policy_file))
    assert text.returncode == 0, text.stderr
    assert "decisions reproduced: 1000 of 1000 replayed" in text.stdout


def _evaluated() -> list[Outcome]:
    """An evaluation run on route pick: claude right 85 times in 100 (its lower bound is below
    min_quality 0.8), secondary 95 in 100, primary 60 in 100 (below by any measure)."""
    rates = {"claude": 85, "secondary": 95, "primary": 60}
    # the versions the simulator reports: the feedback stored meanwhile joins the same ones
    versions = {
        "claude": "claude-sim-20241022",
        "secondary": "secondary-sim-2024-11-20",
        "primary": "primary-sim-2024-08-06",
    }
    return [
        Outcome(
            OutcomeSource.EVAL,
            "exact",
            1.0 if i < right else 0.0,
            model,
            1e9 + i,
            prompt_id=f"q{i}",
            route="pick",
            reported_model=versions[model],
            run="eval-1",
        )
        for model, right in rates.items()
        for i in range(100)
    ]


async def test_replay_reproduces_decisions_on_quality_measured_from_outcomes(
    store_target: Path | str, tmp_path: Path
) -> None:
    policy_file, _ = await record_traffic(
        make_store(store_target), tmp_path, 300, outcomes=_evaluated(),
        quality={"compare": "lower_bound"},
    )  # fmt: skip
    records = await stored(store_target)
    picked = [r for r in records if r["route"] == "pick" and r["decision"]]
    read = [r["planner_input"]["stats"]["routes"].get("pick", {}) for r in picked]
    assert all(figures["claude"]["quality_sources"].startswith("eval") for figures in read)
    # feedback, stored as outcomes and reloaded while the records arrived, joined the figures
    assert any(figures["primary"]["quality_sources"] == "eval+feedback" for figures in read)
    assert any("lower bound" in x["message"] for r in picked for x in r["decision"]["rejections"])
    result = cli("replay", "--store", str(store_target), "--policy", str(policy_file), "--json")
    assert result.returncode == 0, result.stderr
    total = json.loads(result.stdout)["total"]
    assert (total["records"], total["reproduced"], total["changed"]) == (300, 300, 0)


async def test_a_decision_that_does_not_come_out_again_is_reported(tmp_path: Path) -> None:
    db = tmp_path / "records.db"
    policy_file, _ = await record_traffic(make_store(db), tmp_path, 60)
    with sqlite3.connect(db) as conn:  # the record's planner input, altered behind its back
        victim = conn.execute(
            "SELECT request_id FROM requests WHERE route = 'chat' LIMIT 1"
        ).fetchone()[0]
        conn.execute(
            "UPDATE requests SET body = json_set(body, '$[20][1]', 99999) WHERE request_id = ?",
            (victim,),
        )
    result = cli("replay", "--store", str(db), "--policy", str(policy_file), "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["not_reproduced"]["count"] == 1
    (finding,) = report["not_reproduced"]["first"]
    assert finding["request_id"] == victim
    assert finding["difference"].startswith("decision.")  # e.g. decision.chosen: 'a' != 'b'
    assert finding["recorded"] != finding["replayed"]
    text = cli("replay", "--store", str(db), "--policy", str(policy_file))
    assert text.returncode == 1
    assert "NOT reproduced under their own policy: 1" in text.stdout and victim in text.stdout


async def test_a_new_policy_reports_changes_per_route_and_projected_cost(tmp_path: Path) -> None:
    db = tmp_path / "records.db"
    policy_file, policy = await record_traffic(make_store(db), tmp_path, 400)
    records = await stored(db)
    new = yaml.safe_load(policy_file.read_text())
    new["routes"]["chat"]["strategy"]["models"] = ["secondary", "primary"]  # order swapped
    new["routes"]["gold"]["constraints"] = {"max_cost_usd": 0.0000001}  # now always refused
    new["models"]["claude"]["prices"] = {"input": 8.0, "output": 40.0}  # ten times dearer
    new_file = tmp_path / "new.yaml"
    new_file.write_text(yaml.safe_dump(new))

    result = cli("replay", "--store", str(db), "--policy", str(new_file), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["records_by_policy"] == {policy.hash: 400}
    assert report["total"]["same_policy"] == 0
    routes = report["routes"]
    by_route = Counter(r["route"] or "-" for r in records)
    assert {name: t["records"] for name, t in routes.items()} == dict(by_route)

    # chat: the order changes exactly where both primary and secondary were offered.
    chat = [r for r in records if r["route"] == "chat"]
    both = [r for r in chat if {"primary", "secondary"} <= set(r["decision"]["order"])]
    assert routes["chat"]["changed"] == routes["chat"]["chosen_changed"] == len(both) > 0
    # gold: every decision changes (nothing is feasible now); answered ones cannot be priced.
    gold = [r for r in records if r["route"] == "gold"]
    assert routes["gold"]["changed"] == routes["gold"]["now_infeasible"] == len(gold) > 0
    answered = [r for r in gold if r["usage"] is not None and not r["price_unknown"]]
    assert routes["gold"]["cost"]["unpriced"]["the replayed policy would refuse the request"] == (
        len(answered)
    )
    # strict stays infeasible (its estimates change with claude's prices); triage's models and
    # prices are unchanged, so its decisions come out identical.
    assert routes["strict"]["changed"] == 0 and routes["strict"]["reproduced"] == 0
    assert routes["triage"]["changed"] == 0
    assert routes["triage"]["reproduced"] == by_route["triage"] > 0

    # The projection, recomputed here: recorded usage at the new prices of the first model.
    prices = {name: m.prices for name, m in _load(new_file).models.items()}
    priced = [r for r in chat if r["usage"] is not None and not r["price_unknown"]]
    expected = 0.0
    for r in priced:
        order = r["decision"]["order"]
        first = "secondary" if "secondary" in order else order[0]
        expected += cost_of(Usage(**r["usage"]), prices[first]).usd
    cost = routes["chat"]["cost"]
    assert cost["priced"] == len(priced)
    assert cost["projected_usd"] == pytest.approx(expected)
    assert cost["recorded_usd"] == pytest.approx(sum(r["cost_usd"] for r in priced))
    assert cost["difference_usd"] > 0  # secondary is the dearer model

    shown = cli("show", "--store", str(db), both[-1]["request_id"])  # measured by then
    assert shown.returncode == 0, shown.stderr
    assert "planner input: requested '" in shown.stdout
    assert "  measured primary (route chat): " in shown.stdout

    text = cli("replay", "--store", str(db), "--policy", str(new_file))
    assert text.returncode == 0
    assert "this policy's hash matches none of the records" in text.stdout
    assert "projected cost: each record's recorded token usage priced" in text.stdout
    assert "not priced:" in text.stdout and "changed decisions" in text.stdout


def _load(path: Path) -> Any:
    from modelroute.policy import load_policy

    return load_policy(path)


async def test_records_without_planner_input_and_bad_input(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    store: Store = make_store(db)
    await store.open()
    old = [realistic(i) for i in range(3)]
    refused = RequestRecord("bad-1", 1.0, status="client_error", http_status=400)
    await store.write([*old, refused])
    await store.close()
    policy = tmp_path / "p.yaml"
    policy.write_text(yaml.safe_dump({"models": {}, "routes": {}}))
    policy_file = Path(__file__).parents[2] / "examples" / "quickstart.yaml"

    result = cli("replay", "--store", str(db), "--policy", str(policy_file), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["total"]["replayed"] == 0
    assert report["not_replayable"] == {
        "recorded without planner input (before schema version 5)": 3,
        "refused before planning (bad request)": 1,
    }

    listing = cli("replay", "--store", str(db))
    assert listing.returncode == 0
    assert "pass the policy file with --policy" in listing.stdout
    assert f"{old[0].policy_hash[:12]} version 2026-11-01: 3 records, 0 with planner input" in (
        listing.stdout
    )

    empty = tmp_path / "empty.db"
    store = make_store(empty)
    await store.open()
    await store.close()
    for args, message in [
        (["--store", str(tmp_path / "missing.db"), "--policy", str(policy_file)], "no records at"),
        (["--store", str(empty), "--policy", str(policy_file)], "no records to replay"),
        (["--store", str(db), "--policy", str(tmp_path / "nope.yaml")], "nope.yaml"),
        (["--store", str(db), "--policy", str(policy)], "error"),
        (["--store", str(db), "--policy", str(policy_file), "--since", "soon"], "--since"),
    ]:
        failed = cli("replay", *args)
        assert failed.returncode == 2, (args, failed.stdout, failed.stderr)
        assert message in failed.stderr, (args, failed.stderr)
        assert "Traceback" not in failed.stderr
