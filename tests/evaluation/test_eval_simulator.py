"""``modelroute eval`` through the real engine against the simulator: measured accuracy,
resumed runs, the cost ceiling, fallbacks, cascade confidences and version comparisons."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from modelroute.outcomes import Outcome, OutcomeSource
from modelroute.testing import Simulator

from .support import (
    PROMPTS,
    SMALL_CORRECT,
    SMALL_LOGPROB,
    dataset_lines,
    eval_cli,
    sim_config,
    stored_outcomes,
    write_jsonl,
    write_policy,
)


def _row(report: dict, model: str) -> dict:
    return next(r for r in report["models"] if r["model"] == model)


async def _stored(db: Path, run: str) -> list[Outcome]:
    return await stored_outcomes(db, OutcomeSource.EVAL, run)


async def test_measured_accuracy_falls_inside_its_interval(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "qa.jsonl", dataset_lines())
    db = tmp_path / "eval.db"
    async with Simulator(sim_config()) as sim:
        policy = write_policy(tmp_path, sim.openai_base_url)
        args = [str(data), "--policy", str(policy), "--route", "qa", "--store", str(db)]
        result = await eval_cli(*args, "--models", "small", "--json", "--concurrency", "8")
        assert result.returncode == 0, result.stderr
        assert sim.stats()["small-sim"] == {"ok": PROMPTS}
        table = await eval_cli(*args, "--models", "small")  # resumed: nothing left to send
        assert sim.stats()["small-sim"] == {"ok": PROMPTS}
    assert "estimated cost: $" in result.stderr
    small = _row(result.json(), "small")
    truth = SMALL_CORRECT / PROMPTS
    assert small["n"] == PROMPTS and small["mean"] == truth
    assert small["low"] < truth < small["high"] and small["interval"] == "wilson"
    assert small["versions"] == ["small-2024-07-18"]
    by_task = {r["task"]: r for r in result.json()["tasks"]}
    assert by_task["even"]["n"] == by_task["odd"]["n"] == PROMPTS // 2
    assert table.returncode == 0, table.stderr
    assert "0.70 ±" in table.stdout and f"(n={PROMPTS})" in table.stdout
    assert f"{PROMPTS} already scored" in table.stderr
    stored = await _stored(db, "qa@qa")
    assert len(stored) == PROMPTS
    sample = stored[0]
    assert sample.reported_model == "small-2024-07-18" and sample.fingerprint == "fp_small_a"
    assert sample.cost_usd and sample.cost_usd > 0 and sample.latency_ms and sample.latency_ms > 0
    # the route is a cascade on logprobs: each answer carries the engine's confidence in it
    expected = math.exp(SMALL_LOGPROB)
    assert all(math.isclose(o.confidences["logprobs"], expected, rel_tol=1e-6) for o in stored)


async def test_a_stopped_run_resumes_without_asking_again(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "qa.jsonl", dataset_lines())
    db = tmp_path / "eval.db"
    async with Simulator(sim_config()) as sim:
        policy = write_policy(tmp_path, sim.openai_base_url)
        args = [str(data), "--policy", str(policy), "--route", "qa", "--store", str(db)]
        first = await eval_cli(*args, "--limit", "30", "--run", "nightly")
        assert first.returncode == 0, first.stderr
        assert sim.stats() == {"small-sim": {"ok": 30}, "big-sim": {"ok": 30}}
        second = await eval_cli(*args, "--run", "nightly", "--json")
        assert second.returncode == 0, second.stderr
        # every pair asked exactly once over the two runs
        assert sim.stats() == {"small-sim": {"ok": PROMPTS}, "big-sim": {"ok": PROMPTS}}
    assert "60 already scored in run 'nightly', skipped" in second.stderr
    assert second.json()["summary"]["resumed"] == 60
    assert _row(second.json(), "small")["n"] == PROMPTS  # the report covers the whole run
    assert _row(second.json(), "big")["mean"] == 1.0


async def test_a_run_estimated_above_max_cost_is_refused(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "qa.jsonl", dataset_lines())
    async with Simulator(sim_config()) as sim:
        policy = write_policy(tmp_path, sim.openai_base_url)
        args = [str(data), "--policy", str(policy), "--route", "qa"]
        result = await eval_cli(*args, "--store", str(tmp_path / "e.db"), "--max-cost", "0.001")
        assert sim.stats() == {}  # nothing was sent
    assert result.returncode == 2
    assert "is above --max-cost $0.00100; nothing was sent" in result.stderr
    assert result.stderr.index("estimated cost") < result.stderr.index("error:")


async def test_spend_reaching_max_cost_stops_the_run(tmp_path: Path) -> None:
    """The estimate assumes the route's 16 output tokens; the simulator writes longer
    answers, so the run costs more than estimated and stops at the ceiling."""
    long_answer = "yes " + "and more " * 200
    config = sim_config(answers=[], default_answer=long_answer)
    data = write_jsonl(tmp_path / "qa.jsonl", dataset_lines())
    async with Simulator(config) as sim:
        policy = write_policy(tmp_path, sim.openai_base_url)
        args = [str(data), "--policy", str(policy), "--route", "qa", "--models", "small"]
        result = await eval_cli(*args, "--store", str(tmp_path / "e.db"), "--max-cost", "0.005",
                                "--concurrency", "1")  # fmt: skip
        sent = sim.stats()["small-sim"]["ok"]
    assert result.returncode == 1, result.stderr
    assert "stopped: spend reached --max-cost" in result.stderr
    assert 0 < sent < PROMPTS
    last_progress = result.stderr.split("\r")[-1].splitlines()[0]
    assert f"] {sent}/{PROMPTS} requests, $" in last_progress  # where it stopped, and spend


async def test_fallbacks_answer_only_when_asked(tmp_path: Path) -> None:
    config = sim_config(faults={"server_error": 1.0})
    data = write_jsonl(tmp_path / "qa.jsonl", dataset_lines(4))  # too few to open a breaker
    async with Simulator(config) as sim:
        policy = write_policy(tmp_path, sim.openai_base_url)
        args = [str(data), "--policy", str(policy), "--route", "qa", "--models", "small", "--json"]
        off = await eval_cli(*args, "--store", str(tmp_path / "off.db"))
        assert "backup-sim" not in sim.stats()
        # the route's retries apply (2 attempts), not the defaults' (1)
        assert sim.stats()["small-sim"] == {"server_error": 8}
        on = await eval_cli(*args, "--store", str(tmp_path / "on.db"), "--fallbacks")
        assert sim.stats()["backup-sim"] == {"ok": 4}
    assert off.returncode == 0, off.stderr
    assert off.json()["summary"]["failed"] == 4 and off.json()["models"][0]["failed"] == 4
    assert on.json()["summary"]["scored"] == 4
    assert [r["model"] for r in on.json()["models"]] == ["backup"]  # who really answered


async def test_compare_two_reported_versions(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "qa.jsonl", dataset_lines())
    db = tmp_path / "eval.db"
    async with Simulator(sim_config()) as sim:
        policy = write_policy(tmp_path, sim.openai_base_url)
        args = [str(data), "--policy", str(policy), "--route", "qa", "--models", "small"]
        before = await eval_cli(*args, "--store", str(db), "--run", "july")
        # the provider ships a new version behind the same name: it gets 40 of 100 right
        sim.update_model("small-sim", reported_model="small-2024-11-20", answers=_table(40))
        after = await eval_cli(*args, "--store", str(db), "--run", "november")
    assert before.returncode == 0 and after.returncode == 0, before.stderr + after.stderr
    compare = ["--compare", "small-2024-07-18", "small-2024-11-20", "--store", str(db)]
    result = await eval_cli(*compare, "--route", "qa", "--model", "small", "--json")
    assert result.returncode == 0, result.stderr
    tasks = {r["task"]: r for r in result.json()["tasks"]}
    for task in ("even", "odd"):
        row = tasks[task]
        assert row["n_old"] == row["n_new"] == PROMPTS // 2
        assert row["verdict"] == "worse" and row["high"] < 0
        assert row["low"] < row["difference"] < row["high"]
    text = await eval_cli(*compare)
    assert "worse" in text.stdout and "(n=50)" in text.stdout


def _table(correct: int) -> list:
    from .support import answer_table

    return answer_table(correct)


async def test_compare_says_when_evidence_is_short(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "qa.jsonl", dataset_lines(10))
    db = tmp_path / "eval.db"
    async with Simulator(sim_config()) as sim:
        policy = write_policy(tmp_path, sim.openai_base_url)
        args = [str(data), "--policy", str(policy), "--route", "qa", "--models", "small"]
        await eval_cli(*args, "--store", str(db), "--run", "a")
        sim.update_model("small-sim", reported_model="small-2024-11-20")
        await eval_cli(*args, "--store", str(db), "--run", "b")
    result = await eval_cli("--compare", "small-2024-07-18", "small-2024-11-20", "--store", str(db))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("not enough evidence") == 2  # both tasks, 5 outcomes a side


async def test_judged_answers_and_unreadable_verdicts(tmp_path: Path) -> None:
    """A judge grades each answer; a verdict that breaks the format is counted as not
    graded, never scored 0."""
    config = sim_config()
    config["models"]["big-sim"]["answers"] = [
        {"match": "[Answer to grade]\nYes.", "content": '{"score": 8, "reason": "agrees"}'},
        {"match": "[Answer to grade]\nNo.", "content": "Hard to say, maybe 3?"},
    ]
    lines = dataset_lines(grader={"judge": {"model": "big"}})
    data = write_jsonl(tmp_path / "judged.jsonl", lines)
    async with Simulator(config) as sim:
        policy = write_policy(tmp_path, sim.openai_base_url)
        args = [str(data), "--policy", str(policy), "--route", "qa", "--models", "small"]
        result = await eval_cli(*args, "--store", str(tmp_path / "e.db"), "--json")
        assert sim.stats()["big-sim"] == {"ok": PROMPTS}  # one judge call per answer
    assert result.returncode == 0, result.stderr
    report = result.json()
    small = _row(report, "small")
    assert small["n"] == SMALL_CORRECT and small["mean"] == pytest.approx(0.8)
    # all judged 0.8: no spread to resample, so the Wilson interval of the mean, not a point
    assert small["interval"] == "wilson" and small["ungraded"] == PROMPTS - SMALL_CORRECT
    assert report["summary"]["ungraded"] == PROMPTS - SMALL_CORRECT
    assert "not one JSON object" in report["summary"]["examples"]["ungraded"][0]
    stored = await _stored(tmp_path / "e.db", "judged@qa")
    assert {o.grader for o in stored} == {"judge:big"}
    assert stored[0].detail["reason"] == "agrees"
    # the judge's calls are paid for: spend exceeds what the answers alone cost
    assert report["summary"]["spent_usd"] > sum(o.cost_usd for o in stored)
