"""Bad-input fuzzing of the HTTP API with schemathesis, from the gateway's own OpenAPI document.

The real gateway (uvicorn, in the test's event loop) routes to a healthy simulator; a worker
thread fetches ``/openapi.json``, lets schemathesis generate valid and invalid requests for
every operation, sends them over real sockets and checks each answer: no 5xx, no hang, every
error in the endpoint's own format, every answer a well-formed completion, message or stream.
Generation is derandomized, so CI sees the same cases on every run.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
import requests

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import Case, GenerationMode, Response  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .fixtures import POLICY, sim_config  # noqa: E402
from .harness import gateway  # noqa: E402

CHAT = "POST /v1/chat/completions"
MESSAGES = "POST /v1/messages"
# Examples per (operation, mode). Hypothesis may stop an operation early once it has tried
# everything it can generate (the GET endpoints have no inputs), so the total is asserted.
BUDGET: dict[tuple[str, GenerationMode], int] = {
    (CHAT, GenerationMode.POSITIVE): 340,
    (CHAT, GenerationMode.NEGATIVE): 340,
    (MESSAGES, GenerationMode.POSITIVE): 200,
    (MESSAGES, GenerationMode.NEGATIVE): 200,
    ("GET /v1/models", GenerationMode.POSITIVE): 5,
    ("GET /healthz", GenerationMode.POSITIVE): 5,
    ("GET /readyz", GenerationMode.POSITIVE): 5,
}
MIN_CASES = 1000
TIMEOUT_S = 5.0  # per request: connect and read, and the whole exchange by the wall clock
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# What the policy knows, so valid requests reach the upstreams instead of stopping at a 404.
ROUTE_NAMES = ["chat", "assistant", "cheap-only", "triage", "hedged"]
MODEL_NAMES = ["primary", "secondary", "claude"]
OPENAI_ERROR_TYPES = {"invalid_request_error", "upstream_error", "service_unavailable", "timeout"}
ANTHROPIC_ERROR_TYPES = {
    "invalid_request_error",
    "not_found_error",
    "request_too_large",
    "api_error",
    "overloaded_error",
}


def _fast_sim() -> dict[str, Any]:
    quick = {"latency_ms": {"p50": 1}, "ttft_ms": {"p50": 1}}
    return sim_config(**{name: quick for name in ("primary-sim", "secondary-sim", "claude-sim")})


RESPONSES = {
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionStreamEvent",
    "OpenAIError",
    "AnthropicMessage",
    "AnthropicStreamEvent",
    "AnthropicError",
    "ModelList",
}


def _tailored(spec: dict[str, Any]) -> dict[str, Any]:
    """The served document, narrowed for generation (it describes the API; this steers the
    fuzzer): ``model`` and the task header name this policy's routes and models, so valid
    requests reach the upstreams instead of stopping at a 404 (invalid ones still mutate them
    into unknown names); nested objects are closed and free-form ones (tool parameters, JSON
    schemas) kept small, which keeps valid requests realistic and generation ~4x faster. The
    request objects themselves stay open: unknown top-level fields pass through upstream."""
    schemas = spec["components"]["schemas"]
    for name, schema in schemas.items():
        if name in RESPONSES:
            continue
        if name in ("ChatCompletionRequest", "MessagesRequest"):
            for prop in schema["properties"].values():
                _close(prop)
            schema["maxProperties"] = 10
        else:
            _close(schema)
    names = {"enum": ROUTE_NAMES + MODEL_NAMES}
    schemas["ChatCompletionRequest"]["properties"]["model"] = names
    schemas["MessagesRequest"]["properties"]["model"] = names
    for path in ("/v1/chat/completions", "/v1/messages"):
        for parameter in spec["paths"][path]["post"]["parameters"]:
            if parameter["name"] == "x-modelroute-task":
                parameter["schema"] = {"enum": ROUTE_NAMES}
    return spec


def _close(schema: Any) -> None:
    if isinstance(schema, list):
        for item in schema:
            _close(item)
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind == "object" or (isinstance(kind, list) and "object" in kind):
        if "properties" in schema:
            schema.setdefault("additionalProperties", False)
        elif "additionalProperties" not in schema:
            schema["maxProperties"] = 2
            schema["additionalProperties"] = {"type": ["string", "integer", "boolean"]}
    for value in schema.values():
        _close(value)


# -- per-case checks -------------------------------------------------------------------------


def _json(response: Response) -> Any:
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), f"content-type {content_type!r}"
    return orjson.loads(response.content)


def _openai_error(response: Response) -> None:
    body = _json(response)
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), f"not an OpenAI error object: {body!r}"
    assert isinstance(error.get("message"), str) and error["message"], body
    assert error.get("type") in OPENAI_ERROR_TYPES, body
    assert "param" in error and (error["param"] is None or isinstance(error["param"], str))
    assert "code" in error and (error["code"] is None or isinstance(error["code"], str))


def _anthropic_error(response: Response) -> None:
    body = _json(response)
    assert isinstance(body, dict) and body.get("type") == "error", body
    error = body.get("error")
    assert isinstance(error, dict), f"not an Anthropic error object: {body!r}"
    assert error.get("type") in ANTHROPIC_ERROR_TYPES, body
    assert isinstance(error.get("message"), str) and error["message"], body


def _chat_completion(body: Any) -> None:
    assert isinstance(body, dict) and body.get("object") == "chat.completion", body
    assert isinstance(body.get("id"), str) and isinstance(body.get("model"), str), body
    assert isinstance(body.get("created"), int), body
    choices = body.get("choices")
    assert isinstance(choices, list) and choices, body
    message = choices[0].get("message")
    assert isinstance(message, dict) and message.get("role") == "assistant", body
    content, calls = message.get("content"), message.get("tool_calls")
    assert (isinstance(content, str) and content) or calls, f"an empty completion: {body!r}"
    usage = body.get("usage")
    assert isinstance(usage, dict), body
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert isinstance(usage.get(key), int) and usage[key] >= 0, body


def _anthropic_message(body: Any) -> None:
    assert isinstance(body, dict) and body.get("type") == "message", body
    assert body.get("role") == "assistant" and isinstance(body.get("id"), str), body
    content = body.get("content")
    assert isinstance(content, list) and content, f"an empty message: {body!r}"
    assert all(isinstance(b, dict) and b.get("type") in ("text", "tool_use") for b in content)
    assert isinstance(body.get("stop_reason"), str), body


def _events(response: Response) -> list[tuple[str | None, bytes]]:
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("text/event-stream"), f"content-type {content_type!r}"
    assert not response.stream_cut_short, "the stream did not end in time (a hang?)"
    events = []
    for block in response.content.split(b"\n\n"):
        if not block.strip():
            continue
        name, data = None, b""
        for line in block.split(b"\n"):
            if line.startswith(b"event: "):
                name = line[7:].decode()
            elif line.startswith(b"data: "):
                data = line[6:]
        events.append((name, data))
    return events


def _openai_stream(response: Response) -> None:
    events = _events(response)
    assert events and events[-1][1] == b"[DONE]", f"no [DONE]: {response.content[-300:]!r}"
    for _, data in events[:-1]:
        chunk = orjson.loads(data)
        assert "error" not in chunk, f"a healthy upstream failed a stream: {chunk!r}"
        assert chunk.get("object") == "chat.completion.chunk", chunk


def _anthropic_stream(response: Response) -> None:
    events = _events(response)
    names = [name for name, _ in events]
    assert names[:1] == ["message_start"] and names[-1:] == ["message_stop"], names
    assert "error" not in names, response.content[-300:]
    for name, data in events:
        assert orjson.loads(data).get("type") == name, (name, data)


def _check(label: str, case: Case, response: Response) -> None:
    status = response.status_code
    streamed = isinstance(case.body, dict) and bool(case.body.get("stream"))
    assert status < 500, f"{status} with a healthy upstream: {response.content[:500]!r}"
    if label == CHAT:
        if status >= 400:
            _openai_error(response)
        elif streamed:
            _openai_stream(response)
        else:
            _chat_completion(_json(response))
    elif label == MESSAGES:
        if status >= 400:
            _anthropic_error(response)
        elif streamed:
            _anthropic_stream(response)
        else:
            _anthropic_message(_json(response))
    else:
        assert status == 200, response.content[:500]
    case.validate_response(response, checks=CHECKS)


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Tally:
    cases: int = 0
    statuses: Counter[tuple[str, str, int]] = field(default_factory=Counter)


def _fuzz(url: str) -> Tally:
    """Runs in a worker thread: blocking HTTP while the gateway serves on the test's loop."""
    spec = requests.get(f"{url}/openapi.json", timeout=TIMEOUT_S).json()
    config = schemathesis.Config.from_dict(
        {"request-timeout": TIMEOUT_S, "max-stream-events": 10_000}
    )
    schema = schemathesis.openapi.from_dict(_tailored(spec), config=config)
    tally = Tally()
    with requests.Session() as session:
        for (label, mode), examples in BUDGET.items():
            method, path = label.split(" ")
            operation = schema[path][method]
            _run(
                label,
                mode,
                examples,
                operation.as_strategy(generation_mode=mode),
                url,
                session,
                tally,
            )
    return tally


def _run(
    label: str,
    mode: GenerationMode,
    examples: int,
    strategy: Any,
    url: str,
    session: requests.Session,
    tally: Tally,
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(case=strategy)
    def one(case: Case) -> None:
        started = time.monotonic()
        response = case.call(base_url=url, session=session, timeout=TIMEOUT_S)
        took = time.monotonic() - started
        tally.cases += 1
        tally.statuses[label, mode.value, response.status_code] += 1
        import os
        if os.environ.get("FUZZ_DEBUG") and response.status_code >= 400:
            with open("/tmp/fuzz_errors.txt", "a") as fh:
                msg = response.content[:200].decode("utf-8", "replace")
                fh.write(f"{label} {mode.value} {response.status_code} {msg}\n")
        try:
            assert took < TIMEOUT_S, f"took {took:.1f} s"
            _check(label, case, response)
        except AssertionError as exc:
            exc.add_note(f"reproduce with: {case.as_curl_command()}")
            raise

    run: Callable[[], None] = one
    run()


async def test_fuzz_the_http_api_from_its_openapi_document() -> None:
    async with gateway(POLICY, _fast_sim()) as gw:
        tally = await asyncio.to_thread(_fuzz, gw.url)
        records = gw.records()
    summary = "\n".join(f"{k}: {v}" for k, v in sorted(tally.statuses.items()))
    print(f"\n{tally.cases} fuzzed cases by (operation, mode, status):\n{summary}")
    assert tally.cases >= MIN_CASES, summary
    # Every request to a routed endpoint left exactly one record, refused or answered.
    routed = sum(n for (label, _, _), n in tally.statuses.items() if label in (CHAT, MESSAGES))
    assert len(records) == routed
