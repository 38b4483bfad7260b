"""The simulator honours or refuses, as OpenAI does, what a Chat Completions request asks
beyond the text: ``stream_options``, ``metadata``/``store``, ``response_format``, ``n``,
``tool_choice``, and it always reports a ``system_fingerprint``. Read with the ``openai`` SDK."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from modelroute.testing import Simulator

from .simulator_support import FRANCE, OPENAI_TOOLS


def _user(text: str) -> Any:
    return [{"role": "user", "content": text}]


async def _refused(call: Any) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as caught:
        await call
    error = caught.value
    assert error.status_code == 400
    assert isinstance(error.body, dict) and error.body["type"] == "invalid_request_error"
    return error


# -- stream_options --------------------------------------------------------------------------


async def test_stream_options_without_stream_is_refused(oai: openai.AsyncOpenAI) -> None:
    for stream in (None, False):
        extra = {} if stream is None else {"stream": stream}
        error = await _refused(
            oai.chat.completions.create(
                model="small",
                messages=_user("hi"),
                stream_options={"include_usage": True},
                **extra,
            )
        )
        assert error.param == "stream_options"
        assert "only allowed when 'stream' is enabled" in error.message


async def test_stream_options_with_stream_is_accepted(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="small", messages=_user("hi"), stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage is not None


# -- metadata and store ----------------------------------------------------------------------


async def test_metadata_needs_store(oai: openai.AsyncOpenAI) -> None:
    for store in (None, False):
        extra = {} if store is None else {"store": store}
        error = await _refused(
            oai.chat.completions.create(
                model="small", messages=_user("hi"), metadata={"team": "a"}, **extra
            )
        )
        assert error.param == "metadata"
        assert "only allowed when 'store' is enabled" in error.message
    stored = await oai.chat.completions.create(
        model="small", messages=_user("hi"), metadata={"team": "a"}, store=True
    )
    assert stored.choices[0].message.content


@pytest.mark.parametrize(
    ("metadata", "param"),
    [
        ({"priority": 1}, "metadata.priority"),
        ({"flag": True}, "metadata.flag"),
        ({f"k{i}": "v" for i in range(17)}, "metadata"),
        ({"k" * 65: "v"}, "metadata"),
        ({"note": "x" * 513}, "metadata.note"),
    ],
    ids=["int-value", "bool-value", "17-keys", "long-key", "long-value"],
)
async def test_metadata_must_be_16_short_string_pairs(
    oai: openai.AsyncOpenAI, metadata: dict[str, Any], param: str
) -> None:
    error = await _refused(
        oai.chat.completions.create(
            model="small", messages=_user("hi"), metadata=metadata, store=True
        )
    )
    assert error.param == param


# -- response_format -------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_json_object_answers_json(oai: openai.AsyncOpenAI, stream: bool) -> None:
    messages = _user("What is the capital of France? Answer in JSON.")
    fmt: Any = {"type": "json_object"}
    if stream:
        events = await oai.chat.completions.create(
            model="small", messages=messages, response_format=fmt, stream=True
        )
        content = "".join([c.choices[0].delta.content or "" async for c in events if c.choices])
    else:
        reply = await oai.chat.completions.create(
            model="small", messages=messages, response_format=fmt
        )
        content = reply.choices[0].message.content or ""
    assert json.loads(content) == {"answer": FRANCE}


async def test_json_object_needs_the_word_json(oai: openai.AsyncOpenAI) -> None:
    error = await _refused(
        oai.chat.completions.create(
            model="small",
            messages=_user("capital of France?"),
            response_format={"type": "json_object"},
        )
    )
    assert error.param == "messages"
    assert "must contain the word 'json'" in error.message


async def test_json_schema_answer_has_the_schema_shape(oai: openai.AsyncOpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "population": {"type": "integer"},
            "capital": {"type": "boolean"},
            "kind": {"enum": ["city", "town"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "where": {"$ref": "#/$defs/place"},
        },
        "required": ["city", "population", "capital", "kind", "tags", "where"],
        "additionalProperties": False,
        "$defs": {
            "place": {
                "type": "object",
                "properties": {"country": {"type": ["string", "null"]}},
                "required": ["country"],
                "additionalProperties": False,
            }
        },
    }
    reply = await oai.chat.completions.create(
        model="small",
        messages=_user("capital of France?"),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city_facts", "schema": schema, "strict": True},
        },
    )
    assert json.loads(reply.choices[0].message.content or "") == {
        "city": FRANCE,
        "population": 0,
        "capital": False,
        "kind": "city",
        "tags": [],
        "where": {"country": FRANCE},
    }


async def test_json_schema_answer_parses_into_a_pydantic_model(oai: openai.AsyncOpenAI) -> None:
    from pydantic import BaseModel

    class Facts(BaseModel):
        city: str
        population: int

    parsed = await oai.beta.chat.completions.parse(
        model="small", messages=_user("capital of France?"), response_format=Facts
    )
    assert parsed.choices[0].message.parsed == Facts(city=FRANCE, population=0)


@pytest.mark.parametrize(
    ("fmt", "param"),
    [
        ({"type": "yaml"}, "response_format.type"),
        ({"type": "json_schema"}, "response_format.json_schema"),
        (
            {"type": "json_schema", "json_schema": {"schema": {}}},
            "response_format.json_schema.name",
        ),
    ],
    ids=["unknown-type", "no-json-schema", "no-name"],
)
async def test_invalid_response_format_is_refused(
    oai: openai.AsyncOpenAI, fmt: Any, param: str
) -> None:
    error = await _refused(
        oai.chat.completions.create(model="small", messages=_user("json"), response_format=fmt)
    )
    assert error.param == param


async def test_text_response_format_answers_text(oai: openai.AsyncOpenAI) -> None:
    reply = await oai.chat.completions.create(
        model="small", messages=_user("capital of France?"), response_format={"type": "text"}
    )
    assert reply.choices[0].message.content == FRANCE


# -- n -----------------------------------------------------------------------------------------


async def test_n_answers_with_n_choices(oai: openai.AsyncOpenAI) -> None:
    reply = await oai.chat.completions.create(
        model="small", messages=_user("capital of France?"), n=3
    )
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert {c.message.content for c in reply.choices} == {FRANCE}
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 3 * len(FRANCE.split())


async def test_n_streams_each_choice(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="small", messages=_user("capital of France?"), n=2, stream=True
    )
    texts = {0: "", 1: ""}
    finishes: dict[int, str] = {}
    async for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert texts == {0: FRANCE, 1: FRANCE}
    assert finishes == {0: "stop", 1: "stop"}


async def test_n_out_of_range_is_refused(oai: openai.AsyncOpenAI) -> None:
    for n in (0, 129):
        error = await _refused(
            oai.chat.completions.create(model="small", messages=_user("hi"), n=n)
        )
        assert error.param == "n"


# -- tool_choice -----------------------------------------------------------------------------


async def test_tool_choice_none_answers_in_text(oai: openai.AsyncOpenAI) -> None:
    messages = _user("What is the weather in Paris?")
    called = await oai.chat.completions.create(model="small", messages=messages, tools=OPENAI_TOOLS)
    assert called.choices[0].message.tool_calls  # the same request may call the tool...
    reply = await oai.chat.completions.create(
        model="small", messages=messages, tools=OPENAI_TOOLS, tool_choice="none"
    )
    choice = reply.choices[0]  # ...but not when the client says none
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert choice.message.content


async def test_tool_choice_without_tools_is_refused(oai: openai.AsyncOpenAI) -> None:
    error = await _refused(
        oai.chat.completions.create(model="small", messages=_user("hi"), tool_choice="auto")
    )
    assert error.param == "tool_choice"


# -- system_fingerprint ----------------------------------------------------------------------


async def test_fingerprint_defaults_to_a_stable_string(oai: openai.AsyncOpenAI) -> None:
    first = await oai.chat.completions.create(model="paced", messages=_user("hi"), max_tokens=1)
    second = await oai.chat.completions.create(model="paced", messages=_user("hi"), max_tokens=1)
    fingerprint = first.system_fingerprint
    assert isinstance(fingerprint, str) and fingerprint.startswith("fp_")
    assert len(fingerprint) == len("fp_") + 10
    assert second.system_fingerprint == fingerprint
    configured = await oai.chat.completions.create(model="small", messages=_user("hi"))
    assert configured.system_fingerprint == "fp_small_1"


async def test_default_fingerprints_differ_between_models() -> None:
    config = {"models": {"a": {}, "b": {}}}
    async with Simulator(config) as sim:
        client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="k", max_retries=0)
        try:
            prints = {
                (
                    await client.chat.completions.create(model=m, messages=_user("hi"))
                ).system_fingerprint
                for m in ("a", "b")
            }
        finally:
            await client.close()
    assert len(prints) == 2
