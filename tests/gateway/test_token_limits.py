"""Output limits written as whole floats (``"max_tokens": 292.0``), through the real gateway.

JSON has one number type and some clients send 292.0 for 292: both front doors accept it and
every provider kind receives an integer. Anything that is not a positive whole number is
still the client's 400, in the front door's own error format, and no upstream is called.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .fixtures import POLICY, sim_config
from .harness import Gateway, gateway

TEXT = "What is the capital of France?"
# model name in the policy -> (provider kind, the simulator's model id)
MODELS = {
    "primary": ("simulator", "primary-sim"),
    "secondary": ("openai", "secondary-sim"),
    "claude": ("anthropic", "claude-sim"),
}


async def _post(gw: Gateway, path: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gw.url, timeout=20) as client:
        headers = {"authorization": "Bearer client-key", "anthropic-version": "2023-06-01"}
        return await client.post(path, json=body, headers=headers)


def _openai_body(model: str, key: str, value: Any, stream: bool = False) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": TEXT}],
        key: value,
        "stream": stream,
    }


def _messages_body(model: str, value: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": value, "messages": [{"role": "user", "content": TEXT}]}


def _sent_limit(gw: Gateway, model: str) -> Any:
    """The output limit the upstream received, under its wire format's name."""
    [sent] = gw.sim.requests()
    assert sent.model == MODELS[model][1]
    # Anthropic's wire has only max_tokens; OpenAI's carries the client's own key through.
    for key in ("max_completion_tokens", "max_tokens"):
        if key in sent.body:
            return sent.body[key]
    raise AssertionError(f"no output limit in {sent.body}")


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("key", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_openai_front_sends_a_whole_float_limit_as_an_integer(
    model: str, key: str, stream: bool
) -> None:
    async with gateway(POLICY, sim_config()) as gw:
        response = await _post(gw, "/v1/chat/completions", _openai_body(model, key, 292.0, stream))
        assert response.status_code == 200, response.text
        assert response.headers["x-modelroute-model"] == model
        limit = _sent_limit(gw, model)
        assert limit == 292 and type(limit) is int
        [record] = gw.records()
        assert record.status == "ok"


@pytest.mark.parametrize("model", list(MODELS))
async def test_anthropic_front_sends_a_whole_float_limit_as_an_integer(model: str) -> None:
    async with gateway(POLICY, sim_config()) as gw:
        response = await _post(gw, "/v1/messages", _messages_body(model, 292.0))
        assert response.status_code == 200, response.text
        assert response.json()["type"] == "message"
        limit = _sent_limit(gw, model)
        assert limit == 292 and type(limit) is int


# Beyond 2**53 - 1 a number names no one integer (and 2**64 once made the error body fail).
BAD_LIMITS = [292.5, -3.0, -3, 0, 0.0, True, "292", 1e300, 2**53, 2**64]


@pytest.mark.parametrize("value", BAD_LIMITS, ids=repr)
@pytest.mark.parametrize("key", ["max_tokens", "max_completion_tokens"])
async def test_openai_front_still_refuses_a_limit_that_is_not_a_count(key: str, value: Any) -> None:
    async with gateway(POLICY, sim_config()) as gw:
        response = await _post(gw, "/v1/chat/completions", _openai_body("chat", key, value))
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["code"] == "invalid_request"
        assert error["message"] == f"'{key}' must be a positive integer"
        assert gw.sim.requests() == []  # refused before any upstream was asked


# null is "no limit" to OpenAI clients, but the Messages API requires a limit.
@pytest.mark.parametrize("value", [*BAD_LIMITS, None], ids=repr)
async def test_anthropic_front_still_refuses_a_limit_that_is_not_a_count(value: Any) -> None:
    async with gateway(POLICY, sim_config()) as gw:
        response = await _post(gw, "/v1/messages", _messages_body("chat", value))
        assert response.status_code == 400
        body = response.json()
        assert body["type"] == "error"
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["message"] == "max_tokens: Field required (a positive integer)"
        assert gw.sim.requests() == []
