"""Quality measured from the store's outcomes reaches the planner of a running gateway.

The gateway runs under uvicorn against the simulator, with the quickstart policy (its chat
route takes the cheapest model whose quality is at least 0.8: the small one, prior 0.82).
Outcomes written to the store by someone else (an evaluation run) are loaded by the periodic
refresh and change which model the route picks; only the current provider-reported version's
outcomes count; feedback is stored as an outcome and counted once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from modelroute.outcomes import Outcome, OutcomeSource

from ..conftest import EXAMPLES
from ..records.conftest import make_store as open_store
from .harness import Gateway, gateway

QUICKSTART = (EXAMPLES / "quickstart.yaml").read_text()
QUICKSTART_SIM = yaml.safe_load((EXAMPLES / "simulator" / "quickstart.yaml").read_text())
SMALL_VERSION = "small-v1-2024-08-06"  # what the simulator reports for the small model
PATIENCE_S = 30.0


def quickstart() -> str:
    text = QUICKSTART.split("\ndefaults:\n", 1)[1]
    return "defaults:\n" + text.replace("http://127.0.0.1:8900/v1", "{sim}")


def evaluated(n: int, correct: int, version: str, at: float, run: str = "run-1") -> list[Outcome]:
    """An evaluation run's outcomes for the chat route's small model: ``correct`` of ``n``."""
    return [
        Outcome(
            OutcomeSource.EVAL,
            "exact",
            1.0 if i < correct else 0.0,
            "small",
            at + i / 1000,
            prompt_id=f"q{i}",
            route="chat",
            task="qa",
            reported_model=version,
            run=run,
        )
        for i in range(n)
    ]


async def chat(http: httpx.AsyncClient, gw: Gateway) -> tuple[str, str]:
    body = {"model": "chat", "messages": [{"role": "user", "content": "capital of France?"}]}
    answer = await http.post(f"{gw.base_url}/chat/completions", json=body)
    answer.raise_for_status()
    return answer.headers["x-modelroute-model"], answer.headers["x-modelroute-request-id"]


async def until(check: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


def small_of(decision: dict[str, Any]) -> dict[str, Any]:
    found = [c for tier in decision["tiers"] for c in tier if c["model"] == "small"]
    found += [r for r in decision["rejections"] if r["model"] == "small"]
    return found[0]


async def test_outcomes_in_the_store_change_the_routes_pick(store_target: Path | str) -> None:
    store = open_store(store_target)
    async with gateway(quickstart(), QUICKSTART_SIM, store=store, quality_refresh_s=0.2) as gw:
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await chat(http, gw))[0] == "small"  # no outcomes: the prior 0.82 serves
            # An evaluation run elsewhere finds the small model right 60 times in 100.
            elsewhere = open_store(store_target)
            await elsewhere.open()
            try:
                assert await elsewhere.add_outcomes(evaluated(100, 60, SMALL_VERSION, 1e9)) == 100
                refreshes = gw.router.measured.refreshes if gw.router.measured else 0

                async def refreshed() -> bool:
                    assert gw.router.measured is not None
                    return gw.router.measured.refreshes > refreshes + 1

                await until(refreshed, "the measured quality was never reloaded")
                model, request_id = await chat(http, gw)
                assert model == "large"
                # A new provider-reported version answers: its 5 outcomes are fewer than
                # min_samples (30), and the old version's no longer count: back to the prior.
                newer = evaluated(5, 0, "small-v1-2025-01-01", 2e9, run="run-2")
                assert await elsewhere.add_outcomes(newer) == 5
                refreshes = gw.router.measured.refreshes if gw.router.measured else 0
                await until(refreshed, "the measured quality was never reloaded")
                model_after, after_id = await chat(http, gw)
            finally:
                await elsewhere.close()
        assert model_after == "small"
        record = gw.record(request_id)
        assert record.decision is not None
        rejected = small_of(record.decision)
        assert rejected["reason"] == "below_min_quality" and rejected["detail"] == "measured"
        assert rejected["value"] == pytest.approx(0.6) and rejected["limit"] == 0.8
        # the record keeps what the planner read: the interval, the sources and the version
        assert record.planner_input is not None
        read = record.planner_input.stats.by_route[("chat", "small")]
        assert (read.quality, read.quality_samples) == (pytest.approx(0.6), 100)
        assert read.quality_low is not None and read.quality_low < 0.6 < (read.quality_high or 0)
        assert (read.quality_sources, read.quality_version) == ("eval", SMALL_VERSION)
        after = gw.record(after_id).decision
        assert after is not None
        chosen = small_of(after)
        assert chosen["quality_source"] == "prior" and chosen["quality_samples"] == 5


async def test_feedback_is_an_outcome_counted_once(store_target: Path | str) -> None:
    store = open_store(store_target)
    async with gateway(quickstart(), QUICKSTART_SIM, store=store, quality_refresh_s=0.2) as gw:
        gw.router.rolling.refresh_s = 0.0
        async with httpx.AsyncClient(timeout=10) as http:
            model, request_id = await chat(http, gw)
            for score in (0.2, 0.9):  # a later rating replaces the earlier
                rated = await http.post(
                    f"{gw.base_url}/feedback",
                    json={"request_id": request_id, "score": score, "source": "user"},
                )
                assert rated.status_code == 200, rated.text
        [outcome] = await store.outcomes(source=OutcomeSource.FEEDBACK)
        served = gw.record(request_id)
        assert outcome.score == 0.9 and outcome.grader == "feedback"
        assert (outcome.request_id, outcome.prompt_id) == (request_id, request_id)
        assert (outcome.route, outcome.model, outcome.task) == ("chat", model, served.task)
        assert outcome.reported_model == served.final_reported_model == SMALL_VERSION
        assert outcome.cost_usd == served.cost_usd and outcome.latency_ms == served.latency_ms
        assert outcome.detail == {"source": "user"}
        # Before the next refresh the rolling window stands in; after it, the outcome counts
        # and the window does not count the same rating again.
        assert gw.router.measured is not None
        refreshes = gw.router.measured.refreshes

        async def refreshed() -> bool:
            assert gw.router.measured is not None
            return gw.router.measured.refreshes > refreshes + 1

        await until(refreshed, "the measured quality was never reloaded")
        measured = gw.router.stats_snapshot().by_route[("chat", "small")]
        assert (measured.quality, measured.quality_samples) == (0.9, 1)
        assert measured.quality_sources == "feedback" and measured.quality_version == SMALL_VERSION
        assert measured.samples >= 1  # the latency and errors still come from the window


async def test_feedback_for_a_request_this_process_forgot_is_joined_from_the_store(
    store_target: Path | str,
) -> None:
    store = open_store(store_target)
    async with gateway(quickstart(), QUICKSTART_SIM, store=store, quality_refresh_s=0.2) as gw:
        recent = gw.router.rolling.recent
        assert recent.max_age_s is not None  # with a store, only the last seconds are kept
        recent.limit = 2  # so that two more requests push the first out
        async with httpx.AsyncClient(timeout=10) as http:
            model, first = await chat(http, gw)
            for _ in range(2):
                await chat(http, gw)
            assert gw.router.rolling.served(first) is None

            async def stored() -> bool:
                return await store.get(first) is not None

            await until(stored, "the first record never reached the store")
            rated = await http.post(
                f"{gw.base_url}/feedback", json={"request_id": first, "score": 0.7}
            )
            assert rated.status_code == 200, rated.text
        [outcome] = await store.outcomes(source=OutcomeSource.FEEDBACK)
        served = gw.record(first)
        assert (outcome.request_id, outcome.score, outcome.model) == (first, 0.7, model)
        assert outcome.reported_model == served.final_reported_model == SMALL_VERSION
        assert outcome.cost_usd == served.cost_usd and outcome.latency_ms == served.latency_ms
