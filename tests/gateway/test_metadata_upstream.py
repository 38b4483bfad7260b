"""``metadata`` is read by routing and kept in records; what reaches an upstream is only what
that upstream accepts. The simulator refuses metadata as OpenAI does (only with
``store: true``, 16 string pairs at most) and as Anthropic does (``user_id`` only), so a
leak fails these tests over the wire. Observed from the simulator's side."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from modelroute import load_policy_text

from .fixtures import sdk_client, sim_config
from .harness import Gateway, gateway

POLICY = """
version: metadata-1
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
  secondary:
    provider: openai
    base_url: "{sim}"
    model_id: secondary-sim
    allow_floating: true
    prices: {input: 3.0, output: 6.0}
    context_window: 64000
    latency: {p50_ms: 30, p95_ms: 80}
    forward_metadata: true
  claude:
    provider: anthropic
    base_url: "{sim_root}"
    model_id: claude-sim
    allow_floating: true
    prices: {input: 0.8, output: 4.0}
    context_window: 200000
    latency: {p50_ms: 40, p95_ms: 90}
routes:
  chat:
    strategy: {kind: fixed, models: [primary]}
  invoices:
    match: {metadata: {document_type: [invoice]}}
    strategy: {kind: fixed, models: [primary]}
  forwarding:
    strategy: {kind: fixed, models: [secondary]}
  claude-chat:
    strategy: {kind: fixed, models: [claude]}
"""


async def _ask(gw: Gateway, stream: bool, model: str | None = None, **extra: Any) -> str:
    """One request with the openai SDK; the answer text."""
    client = sdk_client(gw)
    messages: Any = [{"role": "user", "content": "hello"}]
    body: dict[str, Any] = {"model": model or "unrouted", "messages": messages, **extra}
    if stream:
        chunks = [c async for c in await client.chat.completions.create(**body, stream=True)]
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reply = await client.chat.completions.create(**body)
    return reply.choices[0].message.content or ""


def _sent(gw: Gateway) -> dict[str, Any]:
    [request] = gw.sim.requests()
    assert request.outcome == "ok", request
    return dict(request.body)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_routing_metadata_is_not_sent_to_an_openai_upstream(stream: bool) -> None:
    """The README's routing by metadata.task, with a value OpenAI would refuse (an integer)
    and no store: the upstream gets no metadata at all."""
    async with gateway(POLICY, sim_config()) as gw:
        metadata = {"task": "chat", "priority": 1}
        assert await _ask(gw, stream, metadata=metadata) == "primary answer"
        assert "metadata" not in _sent(gw)
        [record] = gw.records()
        assert record.route == "chat" and record.metadata == {"task": "chat", "priority": "1"}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_with_store_the_clients_own_keys_go_upstream(stream: bool) -> None:
    metadata = {
        "task": "invoices",
        "document_type": "invoice",  # read by a route's match rule
        "x-modelroute-max-cost-usd": "1",  # a per-request limit
        "max_latency_ms": "60000",
        "team": "billing",  # the client's own
    }
    async with gateway(POLICY, sim_config()) as gw:
        await _ask(gw, stream, metadata=metadata, store=True)
        sent = _sent(gw)
        assert sent["store"] is True and sent["metadata"] == {"team": "billing"}


async def test_a_match_rule_key_alone_is_not_sent() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        await _ask(gw, False, metadata={"document_type": "invoice"}, store=True)
        assert "metadata" not in _sent(gw)
        [record] = gw.records()
        assert record.route == "invoices"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_forward_metadata_sends_the_routing_keys_too(stream: bool) -> None:
    async with gateway(POLICY, sim_config()) as gw:
        metadata = {"task": "forwarding", "team": "billing"}
        assert await _ask(gw, stream, metadata=metadata, store=True) == "secondary answer"
        assert _sent(gw)["metadata"] == metadata


async def test_forward_metadata_still_needs_store_for_openai() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        assert await _ask(gw, False, metadata={"task": "forwarding"}) == "secondary answer"
        assert "metadata" not in _sent(gw)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_anthropic_upstream_gets_only_the_user_id(stream: bool) -> None:
    async with gateway(POLICY, sim_config()) as gw:
        metadata = {"task": "claude-chat", "team": "billing"}
        assert await _ask(gw, stream, metadata=metadata, user="user-7") == "claude answer"
        assert _sent(gw)["metadata"] == {"user_id": "user-7"}


async def test_anthropic_upstream_without_a_user_gets_no_metadata() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        await _ask(gw, False, metadata={"task": "claude-chat", "team": "billing"})
        assert "metadata" not in _sent(gw)


def test_the_compiled_models_carry_the_routing_keys() -> None:
    text = POLICY.replace('"{sim}"', "http://127.0.0.1:1/v1").replace(
        '"{sim_root}"', "http://127.0.0.1:1"
    )
    policy = load_policy_text(text, "p.yaml")
    routing = policy.models["primary"].routing_metadata
    assert {"task", "document_type", "max_cost_usd", "x-modelroute-min-quality"} <= routing
    assert policy.models["secondary"].routing_metadata == frozenset()
    # An option left at its default does not change the policy's hash.
    plain = load_policy_text(text.replace("    forward_metadata: true\n", ""), "p.yaml")
    off = load_policy_text(
        text.replace("    forward_metadata: true\n", "    forward_metadata: false\n"), "p.yaml"
    )
    assert plain.hash == off.hash != policy.hash


@pytest.mark.parametrize(
    ("route", "sent_metadata"),
    [("claude-chat", {"user_id": "user-7"}), ("chat", None)],
    ids=["anthropic-upstream", "openai-upstream"],
)
async def test_anthropic_clients_user_id(route: str, sent_metadata: Any) -> None:
    """At /v1/messages, Anthropic's metadata.user_id reaches an Anthropic upstream as
    user_id; an OpenAI-format upstream gets no metadata (there is no store)."""
    async with gateway(POLICY, sim_config()) as gw:
        client = anthropic.AsyncAnthropic(base_url=gw.url, api_key="client-key", max_retries=0)
        gw.closing(client)
        message = await client.messages.create(
            model=route,
            max_tokens=64,
            messages=[{"role": "user", "content": "hello"}],
            metadata={"user_id": "user-7"},
        )
        assert message.content
        assert _sent(gw).get("metadata") == sent_metadata
