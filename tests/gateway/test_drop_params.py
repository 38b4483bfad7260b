"""``drop_params`` on a model: the fields it lists never reach that model's upstream, whatever
its provider kind, while other models of the same request still get them. Observed from the
simulator's side: what it recorded is what went over the wire."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from modelroute import PolicyError, load_policy_text

from .fixtures import sim_config
from .harness import Gateway, gateway

POLICY = """
version: drop-1
defaults:
  timeouts: {attempt_ms: 2000, total_ms: 6000}
  retries: {max_attempts: 1}
models:
  primary:
    provider: simulator
    base_url: "{sim}"
    model_id: primary-sim
    allow_floating: true
    prices: {input: 1.0, output: 2.0}
    context_window: 4000
    latency: {p50_ms: 20, p95_ms: 50}
    drop_params: [temperature, seed]
  secondary:
    provider: openai
    base_url: "{sim}"
    model_id: secondary-sim
    allow_floating: true
    prices: {input: 3.0, output: 6.0}
    context_window: 64000
    latency: {p50_ms: 30, p95_ms: 80}
  claude:
    provider: anthropic
    base_url: "{sim_root}"
    model_id: claude-sim
    allow_floating: true
    prices: {input: 0.8, output: 4.0}
    context_window: 200000
    latency: {p50_ms: 40, p95_ms: 90}
    drop_params: [top_p, top_k]
routes:
  chat:
    strategy: {kind: fixed, models: [primary, secondary]}
"""

SAMPLING = {"temperature": 0.5, "top_p": 0.9, "top_k": 40, "seed": 7}


async def _ask(gw: Gateway, model: str, stream: bool, **fields: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    async with httpx.AsyncClient(base_url=gw.url, timeout=20) as client:
        response = await client.post("/v1/chat/completions", json={**body, **fields})
    assert response.status_code == 200, response.text
    return response


def _sent(gw: Gateway) -> dict[str, dict[str, Any]]:
    """Each simulated model's request body, by simulator model id."""
    return {r.model: r.body for r in gw.sim.requests()}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_openai_wire_model_never_receives_dropped_fields(stream: bool) -> None:
    async with gateway(POLICY, sim_config()) as gw:
        await _ask(gw, "primary", stream, **SAMPLING)
        sent = _sent(gw)["primary-sim"]
        assert "temperature" not in sent and "seed" not in sent
        assert sent["top_p"] == 0.9 and sent["top_k"] == 40  # not listed: passed through
        [record] = gw.records()
        assert record.status == "ok"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_anthropic_model_never_receives_dropped_fields(stream: bool) -> None:
    """The case drop_params exists for: a Claude model that answers 400 to temperature
    beside top_p. Without the option, top_p below 1 goes out with temperature."""
    async with gateway(POLICY, sim_config()) as gw:
        await _ask(gw, "claude", stream, **SAMPLING)
        sent = _sent(gw)["claude-sim"]
        assert sent["temperature"] == 0.5
        assert "top_p" not in sent and "top_k" not in sent


async def test_fields_dropped_for_one_model_still_reach_the_next() -> None:
    """The policy option is per model: the client's body is kept whole, and the fallback
    model, which lists nothing, gets every field."""
    sim = sim_config(**{"primary-sim": {"script": ["server_error"]}})
    async with gateway(POLICY, sim) as gw:
        await _ask(gw, "chat", False, **SAMPLING)
        sent = _sent(gw)
        assert "temperature" not in sent["primary-sim"] and "seed" not in sent["primary-sim"]
        assert {k: sent["secondary-sim"][k] for k in SAMPLING} == SAMPLING
        [record] = gw.records()
        assert [(a.model, a.outcome) for a in record.attempts] == [
            ("primary", "failed"),
            ("secondary", "ok"),
        ]


async def test_a_request_without_the_fields_is_sent_as_is() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        await _ask(gw, "primary", False, top_p=0.5)
        sent = _sent(gw)["primary-sim"]
        assert sent["top_p"] == 0.5 and "temperature" not in sent


def _policy(drop: str) -> str:
    text = POLICY.replace('"{sim}"', "http://127.0.0.1:1/v1").replace(
        '"{sim_root}"', "http://127.0.0.1:1"
    )
    return text.replace("    drop_params: [temperature, seed]\n", drop)


def test_the_compiled_model_carries_the_names() -> None:
    policy = load_policy_text(_policy("    drop_params: [temperature, top_p]\n"), "p.yaml")
    assert policy.models["primary"].drop_params == frozenset({"temperature", "top_p"})
    assert policy.models["secondary"].drop_params == frozenset()


def test_an_unknown_field_name_is_a_located_error() -> None:
    text = _policy("    drop_params: [temprature, messages]\n")
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, "p.yaml")
    line = text.splitlines().index("    drop_params: [temprature, messages]") + 1
    rendered = [p.render() for p in info.value.problems if p.severity == "error"]
    assert len(rendered) == 2, rendered
    typo, required = rendered
    assert typo.startswith(f"p.yaml:{line}:")
    assert "models.primary.drop_params[0]: 'temprature' is not allowed" in typo
    assert "did you mean 'temperature'?" in typo
    # The fields the gateway needs are not droppable: the hint lists what is.
    assert "models.primary.drop_params[1]: 'messages' is not allowed" in required
    assert "'top_p'" in required and "'seed'" in required


def test_an_unused_option_leaves_the_policy_hash_alone() -> None:
    """Records made before the option existed stay comparable with ones made after."""
    without = load_policy_text(_policy(""), "p.yaml")
    empty = load_policy_text(_policy("    drop_params: []\n"), "p.yaml")
    used = load_policy_text(_policy("    drop_params: [seed]\n"), "p.yaml")
    assert without.hash == empty.hash
    assert used.hash != without.hash
