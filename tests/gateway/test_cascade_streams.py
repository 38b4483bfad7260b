"""Streamed requests on a cascade route, through the real gateway, with both official SDKs.

An early tier is asked without streaming (its confidence needs the whole answer), so what it
is sent must be a valid non-streamed request: OpenAI (and the simulator, which follows it)
refuses ``stream_options`` without ``stream: true`` with a 400.
"""

from __future__ import annotations

import anthropic
import pytest

from .faults_support import FRANCE, POLICY, scripted_sim, sdk_client, trail, user_messages
from .harness import Gateway, gateway


def _early_tier_requests(gw: Gateway) -> list[dict[str, object]]:
    return [r.body for r in gw.sim.requests() if r.model == "primary-sim"]


@pytest.mark.parametrize(
    ("text", "answer", "final"),
    [(FRANCE, "Paris", "primary"), ("Are you unsure?", "secondary answer", "secondary")],
    ids=["accepted", "escalated"],
)
async def test_openai_stream_with_usage_on_a_cascade(text: str, answer: str, final: str) -> None:
    async with gateway(POLICY, scripted_sim()) as gw:
        stream = await sdk_client(gw).chat.completions.create(
            model="triage",
            messages=user_messages(text),
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == answer
        usage = chunks[-1].usage
        assert usage is not None and usage.completion_tokens > 0
        [record] = gw.records()
        assert record.status == "ok" and record.final_model == final
        assert trail(record)[0][:2] == ("primary", "ok" if final == "primary" else "low_confidence")
        [sent] = _early_tier_requests(gw)
        assert sent["stream"] is False and "stream_options" not in sent


async def test_anthropic_stream_on_a_cascade() -> None:
    async with gateway(POLICY, scripted_sim()) as gw:
        client = anthropic.AsyncAnthropic(base_url=gw.url, api_key="client-key", max_retries=0)
        gw.closing(client)
        async with client.messages.stream(
            model="triage", max_tokens=64, messages=[{"role": "user", "content": FRANCE}]
        ) as stream:
            text = "".join([piece async for piece in stream.text_stream])
            message = await stream.get_final_message()
        assert text == "Paris"
        assert message.usage.output_tokens > 0
        [record] = gw.records()
        assert record.status == "ok" and record.final_model == "primary"
        [sent] = _early_tier_requests(gw)
        assert sent["stream"] is False and "stream_options" not in sent
