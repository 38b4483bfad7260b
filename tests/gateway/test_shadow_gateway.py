"""Shadow comparisons through the real gateway: ``serve``'s router and metrics (built as
``modelroute serve`` builds them) under uvicorn, the simulator as upstream, the official
``openai`` SDK as client, and a SQLite file as the store. The shadow outcomes land in the
store beside the records, and ``/metrics`` counts them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import openai
from prometheus_client.parser import text_string_to_metric_families

from modelroute import load_policy_text
from modelroute.outcomes import OutcomeSource
from modelroute.records.stores.sqlite import SqliteStore
from modelroute.serve import build_router
from modelroute.testing import Simulator

from .harness import serve_router

POLICY = """
models:
  large:
    provider: simulator
    base_url: "{sim}"
    model_id: large-sim
    allow_floating: true
    prices: {input: 2.5, output: 10}
    context_window: 16000
    latency: {p50_ms: 20, p95_ms: 50}
  small:
    provider: simulator
    base_url: "{sim}"
    model_id: small-sim
    allow_floating: true
    prices: {input: 0.15, output: 0.6}
    context_window: 16000
    latency: {p50_ms: 10, p95_ms: 30}
routes:
  extract:
    output_tokens: 10
    strategy: {kind: fixed, models: [large]}
    shadow: {models: [small], sample: 0.5, judge: agreement, max_usd_per_day: 1}
"""
SIM = {
    "models": {
        "large-sim": {
            "reported_model": "large-sim-2024-11-20",
            "answers": [{"match": "invoice", "content": "INV-2291"}],
        },
        "small-sim": {
            "reported_model": "small-sim-2024-07-18",
            "latency_ms": {"p50": 30},
            "answers": [
                {"match": "7, please", "content": "INV-2291."},  # agrees, once normalised
                {"match": "invoice", "content": "INV-2219"},  # does not
            ],
        },
    }
}
PATIENCE_S = 30.0
Samples = dict[str, dict[tuple[str, ...], float]]  # name -> labels (sorted by name) -> value


def _samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(v for k, v in sorted(sample.labels.items()))
            out.setdefault(sample.name, {})[labels] = sample.value
    return out


async def _scrape_until_settled(http: httpx.AsyncClient, url: str) -> Samples:
    """/metrics once every sampled request's comparison is stored (the worker runs on)."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        samples = _samples((await http.get(f"{url}/metrics")).text)
        sent = samples.get("modelroute_shadow_requests_total", {})
        stored = samples.get("modelroute_shadow_outcomes_total", {})
        pending = samples.get("modelroute_shadow_pending", {}).get((), 0)
        if sent and sent == stored and pending == 0:
            return samples
        assert time.monotonic() < deadline, samples
        await asyncio.sleep(0.05)


async def test_a_shadowed_route_stores_its_comparisons_and_counts_them(tmp_path: Path) -> None:
    db = tmp_path / "records.db"
    async with Simulator(SIM) as sim:
        policy = load_policy_text(POLICY.replace("{sim}", sim.openai_base_url), "shadow.yaml")
        router, metrics = build_router(
            policy, store_url=str(db), spool_dir=str(tmp_path / "spool"), content="full",
            traces="off",
        )  # fmt: skip
        async with serve_router(router, metrics) as url, httpx.AsyncClient(timeout=10) as http:
            client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-test")
            ids = []
            for i in range(40):
                reply = await client.chat.completions.with_raw_response.create(
                    model="extract",
                    messages=[{"role": "user", "content": f"Number of invoice {i}, please."}],
                )
                assert reply.parse().choices[0].message.content == "INV-2291"
                ids.append(reply.headers["x-modelroute-request-id"])
            samples = await _scrape_until_settled(http, url)
            await client.close()
    store = SqliteStore(db)
    await store.open()
    try:
        stored = await store.outcomes(source=OutcomeSource.SHADOW)
        records = [await store.get(request_id) for request_id in ids]
    finally:
        await store.close()
    sent = samples["modelroute_shadow_requests_total"][("small", "extract")]
    assert 0 < sent < 40 and len(stored) == sent
    assert samples["modelroute_shadow_outcomes_total"][("small", "extract")] == sent
    assert {o.request_id for o in stored} <= set(ids)
    assert {(o.model, o.reported_model, o.grader, o.route) for o in stored} == {
        ("small", "small-sim-2024-07-18", "agreement", "extract")
    }
    # Invoices 7, 17, 27 and 37 agree; every other one does not.
    for outcome in stored:
        record = next(r for r in records if r is not None and r["request_id"] == outcome.request_id)
        agrees = "7, please" in record["prompt"]
        assert outcome.score == (1.0 if agrees else 0.0), record["prompt"]
    spend = samples["modelroute_shadow_cost_usd_total"][("small", "extract")]
    assert abs(spend - sum(o.cost_usd or 0.0 for o in stored)) < 1e-12
    # The requests' records are the live ones alone: no shadow attempt, no shadow record.
    assert all(r is not None and r["final_model"] == "large" for r in records)
    assert {a["model"] for r in records if r is not None for a in r["attempts"]} == {"large"}
    assert samples["modelroute_requests_total"][("large", "extract", "ok")] == 40


def test_each_gateway_worker_keeps_its_share_of_the_daily_budget(tmp_path: Path) -> None:
    text = POLICY.replace("{sim}", "http://127.0.0.1:9/v1")
    policy = load_policy_text(text, "shadow.yaml")
    options = {"store_url": None, "spool_dir": str(tmp_path), "content": "off", "traces": "off"}
    alone, _ = build_router(policy, **options)
    one_of_four, _ = build_router(policy, **options, workers=4)
    assert alone.shadows is not None and one_of_four.shadows is not None
    assert alone.shadows.budgets["extract"].limit_usd == 1.0
    assert one_of_four.shadows.budgets["extract"].limit_usd == 0.25
    plain, _ = build_router(load_policy_text(text.split("    shadow:")[0]), **options)
    assert plain.shadows is None
