"""The simulator's OpenAI Chat Completions wire, read with the official ``openai`` SDK and a
raw client: answers, streams, logprobs, limits, tool calls, the models list."""

from __future__ import annotations

import json
import statistics
from typing import Any

import httpx
import openai
import orjson
import pytest

from .simulator_support import FRANCE, OPENAI_TOOLS, UNSURE, WEATHER_ARGS, oa_body, sse_events


async def test_openai_completion_parses_in_sdk(oai: openai.AsyncOpenAI) -> None:
    question = "What is the capital of France?"
    raw = await oai.chat.completions.with_raw_response.create(
        model="small", messages=[{"role": "user", "content": question}]
    )
    assert raw.headers["x-sim-outcome"] == "ok"
    r = raw.parse()
    assert r.object == "chat.completion"
    assert r.id.startswith("chatcmpl-")
    assert r.model == "small-2024-08-06"
    assert r.system_fingerprint == "fp_small_1"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == FRANCE
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].logprobs is None
    assert r.usage is not None
    assert r.usage.prompt_tokens == len(question) // 4 + 4
    assert r.usage.completion_tokens == len(FRANCE.split())
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.usage.prompt_tokens_details is not None
    assert r.usage.prompt_tokens_details.cached_tokens == 0
    assert r.usage.completion_tokens_details is not None
    assert r.usage.completion_tokens_details.reasoning_tokens == 0


async def test_openai_unmatched_question_gets_default_answer(oai: openai.AsyncOpenAI) -> None:
    r = await oai.chat.completions.create(
        model="small",
        messages=[
            {"role": "user", "content": "capital of France"},
            {"role": "assistant", "content": "Paris"},
            {"role": "user", "content": [{"type": "text", "text": "and something else"}]},
        ],
    )
    # Only the last user message is matched, and text parts are read.
    assert r.choices[0].message.content == "Hello from the simulator."


async def test_openai_stream_parses_in_sdk(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="small",
        messages=[{"role": "user", "content": "capital of France?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert all(c.model == "small-2024-08-06" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == FRANCE
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) == len(FRANCE.split())  # one delta per token
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(FRANCE.split())


async def test_openai_raw_stream_ends_with_done(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1/chat/completions", json=oa_body(stream=True))
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == (None, "[DONE]")
    # Without include_usage there is no usage chunk and no "usage" key at all.
    assert all("usage" not in orjson.loads(d) for _, d in events[:-1])


async def test_openai_logprobs_mean_equals_configured(oai: openai.AsyncOpenAI) -> None:
    r = await oai.chat.completions.create(
        model="small",
        messages=[{"role": "user", "content": "unsure?"}],
        logprobs=True,
        top_logprobs=3,
    )
    lp = r.choices[0].logprobs
    assert lp is not None and lp.content is not None
    assert "".join(t.token for t in lp.content) == UNSURE
    assert len(lp.content) == len(UNSURE.split())
    assert statistics.fmean(t.logprob for t in lp.content) == pytest.approx(-1.6, abs=1e-9)
    assert len({t.logprob for t in lp.content}) > 1  # spread, not constant
    for t in lp.content:
        assert t.bytes == list(t.token.encode())
        assert len(t.top_logprobs) == 3
        assert t.top_logprobs[0].token == t.token
        assert t.top_logprobs[0].logprob == t.logprob
        assert sum(2.718281828**a.logprob for a in t.top_logprobs) <= 1.0 + 1e-9


async def test_openai_streamed_logprobs(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="small",
        messages=[{"role": "user", "content": "unsure?"}],
        logprobs=True,
        stream=True,
    )
    values = []
    async for chunk in stream:
        choice = chunk.choices[0]
        if choice.delta.content:
            assert choice.logprobs is not None and choice.logprobs.content is not None
            values += [t.logprob for t in choice.logprobs.content]
    assert len(values) == len(UNSURE.split())
    assert statistics.fmean(values) == pytest.approx(-1.6, abs=1e-9)


async def test_openai_max_tokens_truncates_with_length(oai: openai.AsyncOpenAI) -> None:
    r = await oai.chat.completions.create(
        model="small", messages=[{"role": "user", "content": "capital of France"}], max_tokens=3
    )
    assert r.choices[0].message.content == "Paris is the"
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens == 3


async def test_openai_stop_sequence_cuts_answer(oai: openai.AsyncOpenAI) -> None:
    r = await oai.chat.completions.create(
        model="small", messages=[{"role": "user", "content": "capital of France"}], stop=[" of"]
    )
    assert r.choices[0].message.content == "Paris is the capital"
    assert r.choices[0].finish_reason == "stop"


async def test_openai_tool_call_round_trip(oai: openai.AsyncOpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = await oai.chat.completions.create(model="small", messages=messages, tools=OPENAI_TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == WEATHER_ARGS
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "22 C, sunny"},
    ]
    second = await oai.chat.completions.create(model="small", messages=messages, tools=OPENAI_TOOLS)
    # After a tool result the model answers (matching on the tool output) instead of looping.
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "It is 22 degrees in Paris."


async def test_openai_without_tools_answers_in_text(oai: openai.AsyncOpenAI) -> None:
    r = await oai.chat.completions.create(
        model="small", messages=[{"role": "user", "content": "weather?"}]
    )
    assert r.choices[0].message.tool_calls is None
    assert r.choices[0].finish_reason == "stop"


async def test_openai_streamed_tool_call(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="small",
        messages=[{"role": "user", "content": "weather?"}],
        tools=OPENAI_TOOLS,
        stream=True,
    )
    name, args, finish = None, "", None
    async for chunk in stream:
        choice = chunk.choices[0]
        for call in choice.delta.tool_calls or []:
            assert call.function is not None
            name = call.function.name or name
            args += call.function.arguments or ""
        finish = choice.finish_reason or finish
    assert name == "get_weather"
    assert json.loads(args) == WEATHER_ARGS
    assert finish == "tool_calls"


async def test_models_list_and_health(http: httpx.AsyncClient) -> None:
    models = (await http.get("/v1/models")).json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["small", "paced"]
    anthropic_models = (await http.get("/v1/models", headers={"anthropic-version": "x"})).json()
    assert anthropic_models["has_more"] is False
    assert anthropic_models["data"][0]["type"] == "model"
    health = await http.get("/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
