"""Session affinity through the gateway: multi-turn conversations with the official
``openai`` SDK, pins in Redis, records in SQLite; each response says what affinity did
(``x-modelroute-affinity``), each stored record says it and why, and replaying the stored
records reproduces every decision. The simulator's prompt cache shows what staying buys."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import openai
import pytest
import redis

from modelroute.analysis.replay import Replay
from modelroute.records.stores import open_store
from modelroute.sessions.redis_pins import RedisPins
from modelroute.state.redis_state import connect

from ..gateway.harness import Gateway, gateway
from ..state.conftest import REDIS_URL

POLICY = """
version: affinity-gateway
defaults:
  retries: {max_attempts: 1}
models:
  cheap:
    provider: openai
    base_url: "{sim}"
    model_id: cheap-sim
    allow_floating: true
    prices: {input: 1.0, output: 2.0, cached_input: 0.1}
    context_window: 64000
    latency: {p50_ms: 20, p95_ms: 50}
  dear:
    provider: openai
    base_url: "{sim}"
    model_id: dear-sim
    allow_floating: true
    prices: {input: 1.2, output: 2.4, cached_input: 0.12}
    context_window: 64000
    latency: {p50_ms: 20, p95_ms: 50}
routes:
  chat:
    strategy: {kind: cheapest_qualified, models: [cheap, dear]}
    affinity: {mode: sticky, ttl: 10m, max_sessions: 1000}
"""
CACHE = {"min_tokens": 64, "block_tokens": 16}
SIM = {
    "seed": 1,
    "models": {
        "cheap-sim": {"default_answer": "cheap answer", "prompt_cache": CACHE},
        "dear-sim": {"default_answer": "dear answer", "prompt_cache": CACHE},
    },
}
SYSTEM = "You are a careful assistant. " * 20  # long enough to be cached


async def _turn(
    client: openai.AsyncOpenAI, messages: list[dict[str, Any]], stream: bool, **extra: Any
) -> tuple[str, dict[str, str], str]:
    """One turn: the answer, the gateway's headers, the request id; the answer is appended."""
    if stream:
        raw = await client.chat.completions.with_raw_response.create(
            model="chat",
            messages=messages,
            stream=True,
            **extra,  # type: ignore[arg-type]
        )
        text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    else:
        raw = await client.chat.completions.with_raw_response.create(
            model="chat",
            messages=messages,
            **extra,  # type: ignore[arg-type]
        )
        text = raw.parse().choices[0].message.content or ""
    messages.append({"role": "assistant", "content": text})
    headers = {k.lower(): v for k, v in raw.headers.items() if k.lower().startswith("x-modelroute")}
    return text, headers, headers["x-modelroute-request-id"]


async def _conversation(
    gw: Gateway, client: openai.AsyncOpenAI, opening: str, turns: int, **extra: Any
) -> list[tuple[dict[str, str], str]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    out = []
    for n in range(turns):
        messages.append({"role": "user", "content": f"{opening} (turn {n + 1})"})
        _, headers, request_id = await _turn(client, messages, stream=n % 2 == 1, **extra)
        out.append((headers, request_id))
    return out


async def test_multi_turn_conversations_keep_their_model_through_the_gateway(
    tmp_path: Path, redis_prefix: str
) -> None:
    db = tmp_path / "records.db"
    pins = RedisPins(connect(REDIS_URL), redis_prefix)
    async with gateway(POLICY, SIM, store=open_store(str(db)), pins=pins) as gw:
        client = openai.AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0)
        gw.closing(client)
        # the first conversation starts while cheap fails: dear serves it, and keeps it
        gw.sim.update_model("cheap-sim", script=["server_error"])
        first = await _conversation(gw, client, "Plan a trip", 4)
        assert [h["x-modelroute-affinity"] for h, _ in first] == [
            "initialize", "retain", "retain", "retain",
        ]  # fmt: skip
        assert {h["x-modelroute-model"] for h, _ in first} == {"dear"}
        # another conversation (another opening): planned afresh, cheap; then kept there
        second = await _conversation(gw, client, "Write a poem", 3)
        assert [h["x-modelroute-model"] for h, _ in second] == ["cheap"] * 3
        assert [h["x-modelroute-affinity"] for h, _ in second] == [
            "initialize", "retain", "retain",
        ]  # fmt: skip
        # an explicit session id through the SDK's extra headers
        tagged = await _conversation(
            gw, client, "Fix my code", 2, extra_headers={"x-modelroute-session-id": "conv-7"}
        )
        assert gw.record(tagged[1][1]).session == "header:conv-7"
        # the records: what affinity did and why; cached prompt tokens on retained turns
        later = gw.record(first[2][1])
        assert later.decision is not None
        assert later.decision["affinity"]["why"] == "sticky"
        assert later.decision["affinity"]["first_choice"] == "cheap"
        assert later.usage is not None and later.usage.cached_input_tokens > 0
        assert gw.record(first[0][1]).usage.cached_input_tokens == 0  # type: ignore[union-attr]
        ids = [rid for _, rid in first + second + tagged]
        policy = gw.router.policy
    raw = redis.Redis.from_url(REDIS_URL)  # a pin in Redis for each of the three sessions
    assert len(list(raw.scan_iter(match=f"{redis_prefix}pin:chat:*"))) == 3
    raw.close()
    store = open_store(str(db))
    await store.open()
    try:
        stored = [await store.get(rid) for rid in ids]
    finally:
        await store.close()
    assert all(s is not None for s in stored)
    actions = [s["decision"]["affinity"]["action"] for s in stored]  # type: ignore[index]
    assert actions.count("initialize") == 3 and actions.count("retain") == 6
    assert stored[1]["planner_input"]["pin"] == "dear"  # type: ignore[index]
    assert stored[1]["session"].startswith("fingerprint:")  # type: ignore[index]
    replay = Replay(policy)
    for record in stored:
        replay.add(record)  # type: ignore[arg-type]
    assert replay.not_reproduced_count == 0
    assert replay.routes["chat"].reproduced == len(ids)


async def test_a_second_gateway_sharing_redis_continues_the_conversation(
    redis_prefix: str,
) -> None:
    """Two gateways (two replicas) with the same Redis: a conversation begun on one keeps
    its model on the other."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Hello"},
    ]
    pins_one = RedisPins(connect(REDIS_URL), redis_prefix)
    async with gateway(POLICY, SIM, pins=pins_one) as one:
        client = openai.AsyncOpenAI(base_url=one.base_url, api_key="k", max_retries=0)
        one.closing(client)
        one.sim.update_model("cheap-sim", script=["server_error"])
        _, headers, _ = await _turn(client, messages, stream=False)
        assert headers["x-modelroute-model"] == "dear"
    messages.append({"role": "user", "content": "And then?"})
    pins_two = RedisPins(connect(REDIS_URL), redis_prefix)
    async with gateway(POLICY, SIM, pins=pins_two) as two:
        client = openai.AsyncOpenAI(base_url=two.base_url, api_key="k", max_retries=0)
        two.closing(client)
        _, headers, _ = await _turn(client, messages, stream=True)
        assert headers["x-modelroute-affinity"] == "retain"
        assert headers["x-modelroute-model"] == "dear"


async def test_serve_keeps_pins_in_its_state_backend_and_the_dashboard_shows_them(
    tmp_path: Path, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway ``serve --state redis://... --store ... --admin-token`` builds: pins in that
    Redis, and the dashboard's request page says what affinity did."""
    from html import unescape

    import httpx

    from modelroute import load_policy_text
    from modelroute.serve import build_app
    from modelroute.testing import Simulator

    from ..gateway.harness import serve_app

    monkeypatch.setenv("MR_AFFINITY_ADMIN", "adm-affinity-token")
    async with Simulator(SIM) as sim:
        policy = load_policy_text(POLICY.replace("{sim}", sim.openai_base_url), "p.yaml")
        app = build_app(
            policy,
            store_url=f"sqlite:///{tmp_path / 'records.db'}",
            spool_dir=str(tmp_path / "spool"),
            content="truncated",
            traces="off",
            admin_token_env="MR_AFFINITY_ADMIN",
            snapshots_every_s=None,
            state_url=f"{REDIS_URL}?prefix={redis_prefix}",
        )
        async with serve_app(app) as url:
            client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
            messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
            ids = []
            for n in range(2):
                messages.append({"role": "user", "content": f"question {n}"})
                _, headers, request_id = await _turn(client, messages, stream=False)
                assert headers["x-modelroute-affinity"] == ("retain" if n else "initialize")
                ids.append(request_id)
            await client.close()
            raw = redis.Redis.from_url(REDIS_URL)
            assert [raw.get(k) for k in raw.scan_iter(match=f"{redis_prefix}pin:chat:*")] == [
                b"cheap"
            ]
            raw.close()
            auth = {"authorization": "Bearer adm-affinity-token"}
            async with httpx.AsyncClient(base_url=url, headers=auth, timeout=30) as http:
                for _ in range(100):  # the record is written off the request path
                    page = await http.get(f"/ui/requests/{ids[1]}")
                    if page.status_code == 200:
                        break
                    await asyncio.sleep(0.05)
                assert page.status_code == 200
                shown = unescape(page.text.split('id="affinity">', 1)[1].split("</p>", 1)[0])
                assert "retain" in shown and "cheap is the planner's first choice too" in shown
                assert "fingerprint:" in shown
