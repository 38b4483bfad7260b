"""Driving the simulator: fault scripts, the admin endpoints and Python API, recorded requests,
and seeded, reproducible fault probabilities."""

from __future__ import annotations

import anthropic
import httpx
import pytest
from pydantic import ValidationError

from modelroute.testing import SimulatedModel, Simulator

from .simulator_support import an_body, oa_body


async def test_script_is_consumed_in_order(sim: Simulator, http: httpx.AsyncClient) -> None:
    sim.update_model("small", script=["ok", "server_error", "ok", "rate_limited"])
    statuses = [
        (await http.post("/v1/chat/completions", json=oa_body())).status_code for _ in range(6)
    ]
    # Then back to the configured probabilities (no faults for this model).
    assert statuses == [200, 500, 200, 429, 200, 200]
    assert sim.stats()["small"] == {"ok": 4, "server_error": 1, "rate_limited": 1}


async def test_script_from_config_and_reset_refills_it() -> None:
    config = {"models": {"m": {"script": ["overloaded", "ok"]}}}
    async with Simulator(config) as sim, httpx.AsyncClient(base_url=sim.base_url) as http:
        first = [
            (await http.post("/v1/messages", json=an_body(model="m"))).status_code for _ in range(2)
        ]
        assert (await http.post("/_sim/reset")).status_code == 200
        again = [
            (await http.post("/v1/messages", json=an_body(model="m"))).status_code for _ in range(2)
        ]
    assert first == again == [529, 200]


async def test_admin_endpoint_changes_model_at_run_time(
    sim: Simulator, http: httpx.AsyncClient, ant: anthropic.AsyncAnthropic
) -> None:
    change = {"reported_model": "small-2024-11-20", "system_fingerprint": "fp_small_2"}
    r = await http.post("/_sim/models/small", json=change)
    assert r.status_code == 200 and r.json()["reported_model"] == "small-2024-11-20"
    body = (await http.post("/v1/chat/completions", json=oa_body())).json()
    assert (body["model"], body["system_fingerprint"]) == ("small-2024-11-20", "fp_small_2")
    m = await ant.messages.create(
        model="small", max_tokens=8, messages=[{"role": "user", "content": "x"}]
    )
    assert m.model == "small-2024-11-20"
    # Invalid changes are refused whole, and nothing changes.
    bad = await http.post("/_sim/models/small", json={"faults": {"server_error": 0.7, "hang": 0.7}})
    assert bad.status_code == 400 and bad.json()["error"]["details"]
    assert (await http.post("/_sim/models/small", json={"colour": "red"})).status_code == 400
    assert sim.config.models["small"].faults.server_error == 0.0
    # A pushed script takes effect on the next request.
    await http.post("/_sim/models/small", json={"script": ["overloaded"]})
    assert (await http.post("/v1/chat/completions", json=oa_body())).status_code == 503
    stats = (await http.get("/_sim/stats")).json()
    assert stats == sim.stats() == {"small": {"ok": 2, "overloaded": 1}}
    await http.post("/_sim/reset")
    body = (await http.post("/v1/chat/completions", json=oa_body())).json()
    assert body["model"] == "small-2024-08-06"
    assert sim.stats() == {"small": {"ok": 1}}


async def test_update_model_python_api(sim: Simulator, http: httpx.AsyncClient) -> None:
    sim.update_model("small", faults={"server_error": 1.0})
    assert (await http.post("/v1/chat/completions", json=oa_body())).status_code == 500
    created = sim.update_model("fresh", default_answer="new here")
    assert isinstance(created, SimulatedModel)
    r = await http.post("/v1/chat/completions", json=oa_body(model="fresh"))
    assert r.json()["choices"][0]["message"]["content"] == "new here"
    with pytest.raises(ValidationError):
        sim.update_model("small", tokens_per_second=0)
    current = (await http.get("/_sim/models/fresh")).json()
    assert current["default_answer"] == "new here"


async def test_recent_requests_are_recorded(sim: Simulator, http: httpx.AsyncClient) -> None:
    await http.post(
        "/v1/chat/completions", json=oa_body(custom_field=[1, 2]), headers={"x-trace": "abc"}
    )
    [seen] = sim.requests()
    assert seen.endpoint == "/v1/chat/completions"
    assert (seen.model, seen.outcome) == ("small", "ok")
    assert seen.body["custom_field"] == [1, 2]
    assert seen.headers["x-trace"] == "abc"
    listed = (await http.get("/_sim/requests")).json()
    assert listed[0]["body"]["custom_field"] == [1, 2]


async def _outcome_sequence(seed: int, n: int) -> tuple[list[str], dict[str, int]]:
    faults = {"server_error": 0.2, "rate_limited": 0.1, "empty_content": 0.1}
    config = {"seed": seed, "models": {"m": {"faults": faults}, "other": {"faults": faults}}}
    outcomes = []
    async with Simulator(config) as sim, httpx.AsyncClient(base_url=sim.base_url) as http:
        for i in range(n):
            # Traffic to another model in between must not shift this model's sequence.
            if i % 3 == 0:
                await http.post("/v1/chat/completions", json=oa_body(model="other"))
            r = await http.post("/v1/chat/completions", json=oa_body(model="m"))
            outcomes.append(r.headers["x-sim-outcome"])
        return outcomes, sim.stats()["m"]


async def test_seeded_probabilities_are_reproducible() -> None:
    seq_a, counts_a = await _outcome_sequence(seed=11, n=150)
    seq_b, counts_b = await _outcome_sequence(seed=11, n=150)
    assert seq_a == seq_b and counts_a == counts_b
    assert set(counts_a) == {"ok", "server_error", "rate_limited", "empty_content"}
    assert sum(counts_a.values()) == 150
    assert 15 <= counts_a["server_error"] <= 45  # 20 % of 150, loosely
    seq_c, _ = await _outcome_sequence(seed=12, n=150)
    assert seq_c != seq_a
