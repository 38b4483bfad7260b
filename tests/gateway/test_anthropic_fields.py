"""The Anthropic door keeps what a Messages request and answer carry: stop sequences, extended
thinking (blocks, signatures, stream deltas), top_k, service_tier and fields it does not know
pass through to Anthropic upstreams; OpenAI-format upstreams get the equivalents, and a clear
400 for what has none. Through the official ``anthropic`` SDK and the real gateway."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from .fixtures import POLICY, sim_config
from .harness import Gateway, gateway

ASK: Any = [{"role": "user", "content": "hello"}]
THINK: Any = {"type": "enabled", "budget_tokens": 1024}
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def claude_client(gw: Gateway) -> anthropic.AsyncAnthropic:
    client = anthropic.AsyncAnthropic(base_url=gw.url, api_key="client-key", max_retries=0)
    gw.closing(client)
    return client


def upstream_bodies(gw: Gateway, model: str) -> list[dict[str, Any]]:
    return [r.body for r in gw.sim.requests() if r.model == model]


def _thinking_sim() -> dict[str, Any]:
    weather = {"match": "weather", "tool_call": {"name": "get_weather", "arguments": {"c": 1}}}
    return sim_config(**{"claude-sim": {"answers": [weather, {"match": "22", "content": "Warm."}]}})


async def test_a_stop_sequence_hit_says_which_sequence() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = claude_client(gw)
        request: Any = {"max_tokens": 64, "messages": ASK, "stop_sequences": ["nope", "answer"]}
        message = await client.messages.create(model="claude", **request)
        assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "answer")
        assert message.content[0].type == "text" and message.content[0].text == "claude "
        async with client.messages.stream(model="claude", **request) as stream:
            streamed = await stream.get_final_message()
        assert (streamed.stop_reason, streamed.stop_sequence) == ("stop_sequence", "answer")
        # OpenAI's API says only "stop", whether a sequence matched or the answer ended: the
        # door does not guess which (README, the Anthropic door).
        openai_format = await client.messages.create(model="primary", **request)
        assert openai_format.content[0].text == "primary "  # type: ignore[union-attr]
        assert (openai_format.stop_reason, openai_format.stop_sequence) == ("end_turn", None)


async def test_thinking_goes_to_an_anthropic_upstream_and_comes_back() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = claude_client(gw)
        request: Any = {"model": "claude", "max_tokens": 2048, "messages": ASK, "thinking": THINK}
        message = await client.messages.create(**request)
        assert [b.type for b in message.content] == ["thinking", "text"]
        thinking = message.content[0]
        assert thinking.type == "thinking" and thinking.thinking and thinking.signature
        assert upstream_bodies(gw, "claude-sim")[-1]["thinking"] == THINK
        async with client.messages.stream(**request) as stream:
            deltas = [e.delta.type async for e in stream if e.type == "content_block_delta"]
            streamed = await stream.get_final_message()
        assert set(deltas) == {"thinking_delta", "signature_delta", "text_delta"}
        assert streamed.model_dump()["content"] == message.model_dump()["content"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_tool_loop_with_thinking_sends_the_signed_thinking_back(stream: bool) -> None:
    async with gateway(POLICY, _thinking_sim()) as gw:
        client = claude_client(gw)
        request: Any = {"model": "claude", "max_tokens": 2048, "tools": [WEATHER_TOOL]}
        messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
        first = await _ask(client, stream, messages=messages, thinking=THINK, **request)
        assert [b.type for b in first.content] == ["thinking", "tool_use"]
        call = first.content[1]
        assert call.type == "tool_use"
        messages += [
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "22"}],
            },
        ]
        # The upstream checks the thinking block is back, first, with its signature intact.
        second = await _ask(client, stream, messages=messages, thinking=THINK, **request)
        assert second.content[-1].type == "text" and second.content[-1].text == "Warm."
        sent = upstream_bodies(gw, "claude-sim")[-1]["messages"][1]["content"]
        assert sent[0] == first.content[0].model_dump()


async def _ask(client: anthropic.AsyncAnthropic, stream: bool, **request: Any) -> Any:
    if not stream:
        return await client.messages.create(**request)
    async with client.messages.stream(**request) as events:
        return await events.get_final_message()


async def test_fields_an_anthropic_upstream_takes_pass_through_unchanged() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = claude_client(gw)
        extra = {"top_k": 5, "container": "container_1"}
        await client.messages.create(
            model="claude",
            max_tokens=64,
            messages=ASK,
            service_tier="standard_only",
            extra_body=extra,
        )
        sent = upstream_bodies(gw, "claude-sim")[-1]
        assert (sent["top_k"], sent["container"], sent["service_tier"]) == (
            5,
            "container_1",
            "standard_only",
        )
        # A field the upstream does not know reaches it, and its refusal reaches the client.
        with pytest.raises(anthropic.BadRequestError) as caught:
            await client.messages.create(
                model="claude", max_tokens=64, messages=ASK, extra_body={"frobnicate": 1}
            )
        assert "frobnicate: Extra inputs are not permitted" in caught.value.message


@pytest.mark.parametrize("field", [{"top_k": 5}, {"frobnicate": 1}])
async def test_fields_an_openai_upstream_cannot_honour_are_refused(field: dict[str, Any]) -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = claude_client(gw)
        with pytest.raises(anthropic.BadRequestError) as caught:
            await client.messages.create(
                model="primary", max_tokens=64, messages=ASK, extra_body=field
            )
        body: Any = caught.value.body
        assert body["error"]["type"] == "invalid_request_error"
        [name] = field
        assert name in body["error"]["message"] and "primary" in body["error"]["message"]
        assert upstream_bodies(gw, "primary-sim") == []  # refused before it was sent


async def test_fields_with_an_openai_equivalent_are_translated() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = claude_client(gw)
        message = await client.messages.create(
            model="secondary",
            max_tokens=20000,
            messages=ASK,
            thinking={"type": "enabled", "budget_tokens": 16384},
            service_tier="standard_only",
        )
        assert message.content[0].type == "text"
        await client.messages.create(
            model="secondary", max_tokens=64, messages=ASK, thinking={"type": "disabled"}
        )
        high, off = upstream_bodies(gw, "secondary-sim")
        assert (high["reasoning_effort"], high["service_tier"]) == ("high", "default")
        assert not {"thinking", "anthropic", "top_k"} & (high.keys() | off.keys())
        assert "reasoning_effort" not in off


@pytest.mark.parametrize(
    ("thinking", "max_tokens", "words"),
    [
        ({"type": "enabled", "budget_tokens": 1000}, 4096, "1024"),
        ({"type": "enabled", "budget_tokens": 2048}, 2048, "max_tokens"),
        ({"type": "enabled"}, 4096, "budget_tokens"),
        ("yes", 4096, "thinking"),
    ],
)
async def test_invalid_thinking_is_refused_at_the_door(
    thinking: Any, max_tokens: int, words: str
) -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = claude_client(gw)
        for model in ("secondary", "claude"):
            with pytest.raises(anthropic.BadRequestError) as caught:
                await client.messages.create(
                    model=model, max_tokens=max_tokens, messages=ASK, thinking=thinking
                )
            assert words in caught.value.message
        assert gw.sim.requests() == []


async def test_drop_params_lets_an_openai_format_model_serve_them_without() -> None:
    """The operator's explicit choice, per model: the fields are dropped for that model only
    (never in silence by the gateway itself: without the option, the same request is a 400)."""
    policy = POLICY.replace(
        "    model_id: secondary-sim\n",
        "    model_id: secondary-sim\n    drop_params: [top_k, thinking]\n",
    )
    request: Any = {"max_tokens": 2048, "messages": ASK, "thinking": THINK}
    async with gateway(policy, sim_config()) as gw:
        client = claude_client(gw)
        message = await client.messages.create(
            model="secondary", extra_body={"top_k": 5}, **request
        )
        assert message.content[0].type == "text"
        [sent] = upstream_bodies(gw, "secondary-sim")
        assert not {"top_k", "thinking", "reasoning_effort", "anthropic"} & sent.keys()
        with pytest.raises(anthropic.BadRequestError):
            await client.messages.create(model="primary", extra_body={"top_k": 5}, **request)
