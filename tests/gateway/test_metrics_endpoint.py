"""``/metrics`` after a mixed run: parses with the Prometheus parser, counts match records."""

from __future__ import annotations

from collections import Counter

import httpx
from prometheus_client.parser import text_string_to_metric_families

from modelroute import load_policy_text
from modelroute.records.metrics import MetricsSink
from modelroute.records.record import MemorySink
from modelroute.router import Router
from modelroute.testing import Simulator

from .fixtures import POLICY, ask, sim_config
from .harness import serve_router


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


async def test_metrics_match_the_records() -> None:
    async with Simulator(sim_config()) as sim:
        text = POLICY.replace("{sim}", sim.openai_base_url).replace("{sim_root}", sim.base_url)
        sink, metrics = MemorySink(), MetricsSink()
        router = Router(load_policy_text(text), api_keys={}, sink=sink, sinks=[metrics])
        metrics.watch(circuit_states=router.breakers.snapshot)
        async with serve_router(router, metrics) as url, httpx.AsyncClient(timeout=10) as http:
            chat = f"{url}/v1/chat/completions"
            await http.post(chat, json={"model": "chat", **ask()})  # success
            sim.update_model("primary-sim", script=["server_error", "server_error"])
            await http.post(chat, json={"model": "chat", **ask()})  # falls back to secondary
            await http.post(chat, json={"model": "chat", "stream": True, **ask()})  # stream
            sim.update_model("secondary-sim", script=["server_error"] * 2)
            sim.update_model("primary-sim", script=["server_error"] * 2)
            sim.update_model("claude-sim", script=["server_error"] * 2)
            failed = await http.post(chat, json={"model": "chat", **ask()})
            await http.post(chat, json={"model": "nope", **ask()})  # 404, recorded too
            scrape = await http.get(f"{url}/metrics")
    assert failed.status_code == 502
    assert scrape.status_code == 200
    samples = _samples(scrape.text)
    records = list(sink.records)
    assert len(records) == 5
    by_status = Counter((r.route or "", r.final_model or "", r.status) for r in records)
    counted = {
        (labels["route"], labels["model"], labels["status"]): value
        for labels, value in samples["modelroute_requests_total"]
    }
    assert counted == {key: float(n) for key, n in by_status.items()}
    errors = {
        (labels["route"], labels["failure"]): value
        for labels, value in samples["modelroute_errors_total"]
    }
    assert errors == {("chat", "server_error"): 1.0}
    spend = sum(value for _, value in samples["modelroute_cost_usd_total"])
    assert abs(spend - sum(r.cost_usd for r in records)) < 1e-12
    fallbacks = sum(value for _, value in samples["modelroute_fallbacks_total"])
    assert fallbacks == 1.0
    latency_count = sum(value for _, value in samples["modelroute_request_latency_seconds_count"])
    assert latency_count == 5.0
    circuit = {labels["model"]: value for labels, value in samples["modelroute_circuit_state"]}
    assert set(circuit) >= {"primary", "secondary"}
