"""Drift checks on seeded traffic in a real SQLite store: each injected change is found by its
own test, with its effect and both sample sizes, and nothing else alerts; unchanged traffic
alerts rarely (the false-alarm rate is measured over 50 seeds)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from modelroute import load_policy_text
from modelroute.analysis.drift import Report, Thresholds, Windows, check
from modelroute.records.stores.sqlite import SqliteStore

from .support import fill
from .traffic import DAY, Served

NOW = time.time()
WINDOWS = Windows.ending(NOW, DAY, 7 * DAY)
CHAT = Served()
TRIAGE = Served(route="triage", model="mini", reported="mini-2024-07-18", escalation_rate=0.2)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "records.db")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def alerts(report: Report) -> dict[str, list[dict[str, str | None]]]:
    found: dict[str, list[dict[str, str | None]]] = {}
    for f in report.alerts:
        found.setdefault(f.kind, []).append(f.subject)
    return found


async def test_a_latency_regression_alerts_with_its_effect_and_sample_sizes(
    store: SqliteStore,
) -> None:
    slow = dataclasses.replace(CHAT, latency_ms=300.0)  # 1.5x the median
    await fill(store, np.random.default_rng(1), NOW, [(CHAT, 1400)], [(slow, 300)])
    report = await check(store, WINDOWS)
    assert alerts(report) == {
        "latency": [{"route": "chat", "model": "small", "version": "small-2024-08-06"}]
    }
    [latency] = report.alerts
    assert latency.test == "Mann-Whitney U"
    assert latency.p_adjusted is not None and latency.p_adjusted <= 0.01
    assert latency.effect["median_ratio"] == pytest.approx(1.5, rel=0.15)
    assert 0.5 < latency.effect["superiority"] < 1.0
    ok = 1400 * 0.98, 300 * 0.98  # answered requests (2% fail)
    assert latency.n_baseline == pytest.approx(ok[0], rel=0.05)
    assert latency.n_current == pytest.approx(ok[1], rel=0.1)


async def test_a_small_latency_change_is_no_alert(store: SqliteStore) -> None:
    # 10% slower: significant with this much data, but below the 25% the alert asks for
    slower = dataclasses.replace(CHAT, latency_ms=220.0)
    await fill(store, np.random.default_rng(2), NOW, [(CHAT, 3000)], [(slower, 3000)])
    report = await check(store, WINDOWS)
    [latency] = [f for f in report.findings if f.kind == "latency"]
    assert latency.p_adjusted is not None and latency.p_adjusted <= 0.01  # significant
    assert latency.status == "ok" and not report.alerts


@pytest.mark.parametrize("graded", [False, True])
async def test_a_quality_regression_in_outcomes_alerts(store: SqliteStore, graded: bool) -> None:
    await fill(
        store, np.random.default_rng(3), NOW, [(CHAT, 700)], [(CHAT, 100)],
        outcome_means=[(CHAT, 200, 0.9, 0.7)], graded=graded,
    )  # fmt: skip
    report = await check(store, WINDOWS)
    subject = {"route": "chat", "model": "small", "version": "small-2024-08-06", "source": "eval"}
    assert alerts(report) == {"quality": [subject]}
    [quality] = report.alerts
    assert quality.test == ("Welch t" if graded else "Fisher exact")
    assert quality.effect["drop"] == pytest.approx(0.2, abs=0.07)
    assert (quality.n_current, quality.n_baseline) == (200, 200)
    low, high = quality.evidence["change"][1:]
    assert low <= -quality.effect["drop"] <= high < 0  # the change's interval excludes none
    assert "±" in quality.summary and "(n=200)" in quality.summary


async def test_error_and_escalation_rates_going_up_alert(store: SqliteStore) -> None:
    failing = dataclasses.replace(CHAT, error_rate=0.08)
    doubted = dataclasses.replace(TRIAGE, escalation_rate=0.35)
    await fill(
        store, np.random.default_rng(4), NOW, [(CHAT, 3000), (TRIAGE, 3000)],
        [(failing, 800), (doubted, 800)],
    )  # fmt: skip
    report = await check(store, WINDOWS)
    assert alerts(report) == {
        "error_rate": [{"route": "chat", "model": "small"}],
        "escalation_rate": [{"route": "triage", "model": "mini", "version": "mini-2024-07-18"}],
    }
    errors = next(f for f in report.alerts if f.kind == "error_rate")
    assert errors.test == "Fisher exact" and errors.effect["increase"] == pytest.approx(
        0.06, abs=0.025
    )


async def test_a_dearer_model_alerts_on_cost(store: SqliteStore) -> None:
    dear = dataclasses.replace(CHAT, cost_usd=0.0016)
    await fill(store, np.random.default_rng(5), NOW, [(CHAT, 1400)], [(dear, 300)])
    report = await check(store, WINDOWS)
    assert alerts(report) == {
        "cost": [{"route": "chat", "model": "small", "version": "small-2024-08-06"}]
    }
    assert report.alerts[0].effect["mean_ratio"] == pytest.approx(1.6, rel=0.05)


async def test_a_task_mix_shift_alerts(store: SqliteStore) -> None:
    shifted = dataclasses.replace(CHAT, tasks={"classify": 0.2, "extract": 0.5, "summarize": 0.3})
    await fill(store, np.random.default_rng(6), NOW, [(CHAT, 2000)], [(shifted, 300)])
    report = await check(store, WINDOWS)
    assert set(alerts(report)) == {"task_mix"}
    [mix] = report.alerts
    assert mix.test == "chi-squared" and mix.effect["psi"] >= 0.2
    assert mix.evidence["current"]["summarize"] > 0 == mix.evidence["baseline"]["summarize"]


async def test_longer_prompts_alert(store: SqliteStore) -> None:
    longer = dataclasses.replace(CHAT, prompt_tokens=900.0)
    await fill(store, np.random.default_rng(7), NOW, [(CHAT, 2000)], [(longer, 300)])
    report = await check(store, WINDOWS)
    assert set(alerts(report)) == {"prompt_tokens"}
    assert report.alerts[0].effect["ks_distance"] >= 0.1


async def test_a_version_change_names_the_first_request_that_saw_it(store: SqliteStore) -> None:
    new = dataclasses.replace(CHAT, reported="small-2024-11-20", fingerprint="fp_small_2")
    await fill(store, np.random.default_rng(8), NOW, [(CHAT, 500)], [(new, 200)])
    report = await check(store, WINDOWS)
    assert alerts(report)["version"] == [
        {"model": "small", "reported": "small-2024-11-20", "fingerprint": "fp_small_2"}
    ]
    [version] = [f for f in report.alerts if f.kind == "version"]
    first = version.evidence["first_request"]
    stored = await store.get(first)
    assert stored is not None and stored["final_reported_model"] == "small-2024-11-20"
    earlier = await store.query(model="small", since=NOW - 2 * DAY, limit=10_000)
    new_ones = [r for r in earlier if r["final_fingerprint"] == "fp_small_2"]
    assert min(new_ones, key=lambda r: r["started_at"])["request_id"] == first
    assert version.evidence["previous"]["fingerprint"] == "fp_small_1"


POLICY = """
models:
  small:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model_id: small-2024-08-06
    prices: {input: 1.0, output: 2.0}
    context_window: 128000
    latency: {p50_ms: 200, p95_ms: 500}
    quality: {chat: 0.9}
  large:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model_id: large-2024-05-13
    prices: {input: 5.0, output: 15.0}
    context_window: 128000
    latency: {p50_ms: 400, p95_ms: 900}
    quality: {chat: 0.95}
routes:
  chat:
    constraints: {min_quality: 0.8}
    strategy: {kind: fixed, models: [small, large]}
"""


async def test_a_pinned_model_reporting_another_version_and_routing_drift(
    store: SqliteStore,
) -> None:
    policy = load_policy_text(POLICY, "policy.yaml")
    other = dataclasses.replace(CHAT, reported="small-2024-11-20")
    await fill(
        store, np.random.default_rng(9), NOW, [(CHAT, 300)], [(other, 100)],
        outcome_means=[(other, 100, 0.75, 0.75)],
    )  # fmt: skip
    report = await check(store, WINDOWS, policy=policy)
    found = alerts(report)
    assert found["pinned"] == [{"model": "small", "reported": "small-2024-11-20"}]
    assert found["routing"] == [{"route": "chat", "model": "small", "version": "small-2024-11-20"}]
    [routing] = [f for f in report.alerts if f.kind == "routing"]
    assert routing.evidence["measured"]["n"] == 200 and routing.evidence["min_quality"] == 0.8
    assert "lower bound" in routing.summary and "below min_quality 0.8" in routing.summary


async def test_too_little_data_says_so_and_never_alerts(store: SqliteStore) -> None:
    slow = dataclasses.replace(CHAT, latency_ms=2000.0, error_rate=0.5)
    await fill(
        store, np.random.default_rng(10), NOW, [(CHAT, 60)], [(slow, 40)],
        outcome_means=[(CHAT, 10, 0.95, 0.1)],
    )  # fmt: skip
    report = await check(store, WINDOWS)
    assert not report.alerts
    kinds = {f.kind for f in report.findings if f.status == "not_enough_data"}
    assert {"latency", "cost", "error_rate", "quality", "task_mix"} <= kinds
    assert all("not enough data" in f.summary for f in report.findings)


async def test_fifty_unchanged_runs_raise_few_false_alarms(tmp_path: Path) -> None:
    """Seeded, unchanged traffic (two routes, one a cascade, pass/fail and graded outcomes):
    the share of runs with any alert is the false-alarm rate."""
    runs, alarmed, tests, raw = 50, [], 0, 0
    for seed in range(runs):
        store = SqliteStore(tmp_path / f"run-{seed}.db")
        await store.open()
        try:
            rng = np.random.default_rng(1000 + seed)
            await fill(
                store, rng, NOW, [(CHAT, 700), (TRIAGE, 700)], [(CHAT, 300), (TRIAGE, 300)],
                outcome_means=[(CHAT, 120, 0.85, 0.85), (TRIAGE, 120, 0.7, 0.7)],
                graded=seed % 2 == 1,
            )  # fmt: skip
            report = await check(store, WINDOWS, Thresholds())
        finally:
            await store.close()
        tests += sum(1 for f in report.findings if f.p_adjusted is not None)
        raw += sum(1 for f in report.findings if f.p_value is not None and f.p_value <= 0.01)
        if report.alerts:
            alarmed.append((seed, [f.condition for f in report.alerts]))
    rate = len(alarmed) / runs
    message = (
        f"false-alarm rate {rate:.0%} ({len(alarmed)} of {runs} unchanged runs, "
        f"{tests / runs:.0f} tests a run; {raw} of {tests} tests had p <= 0.01 before the "
        f"correction): {alarmed}"
    )
    print(message)
    assert tests / runs >= 10, message  # each run tested latency, cost, rates, quality, mix
    assert len(alarmed) <= 2, message
