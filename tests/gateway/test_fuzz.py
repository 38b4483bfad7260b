"""Bad-input fuzzing of the HTTP API with schemathesis, from the gateway's own OpenAPI document.

The real gateway (uvicorn, in the test's event loop) routes to a healthy simulator. A worker
thread fetches ``/openapi.json`` and sends what schemathesis generates from it over real
sockets, in two phases, as ``st run`` would:

- coverage: schemathesis' deterministic cases, valid and invalid: every field missing, of the
  wrong type, at and past its bounds, unknown enum values, undeclared methods;
- fuzzing: Hypothesis-generated requests, valid and invalid, derandomized so CI sees the same
  cases on every run.

Every answer is checked: never a 5xx (the upstream is healthy, so not even 502/503/504), never
a hang, every error in the endpoint's own format, every answer a valid completion, message or
stream, and all of it conforming to the document.

``/v1/responses`` is fuzzed on a policy with one model that serves the Responses API (its
route forwards requests as sent) and others that only the Chat Completions bridge reaches.

The document is fuzzed in three variants: as served; without the routing headers, so invalid
bodies are not all stopped by an invalid header first; and with ``stream`` required, so
invalid bodies reach the streaming path too.
"""

from __future__ import annotations

import asyncio
import copy
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from pydantic import ValidationError
from schemathesis import BaseSchema, Case, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from modelroute.features import LIMIT_HEADERS, TASK_HEADER
from modelroute.server.openapi import openapi_spec

from ..responses_shapes import valid_event, valid_response
from .fixtures import POLICY, sim_config
from .harness import gateway

# The shared policy, plus a model whose upstream serves the Responses API and its own route.
FUZZ_POLICY = POLICY.replace(
    "routes:\n",
    """  native:
    provider: openai
    base_url: "{sim}"
    model_id: secondary-sim
    allow_floating: true
    prices: {input: 3.0, output: 6.0}
    context_window: 64000
    capabilities: [tools, json_mode, responses]
    latency: {p50_ms: 30, p95_ms: 80}
routes:
  served:
    strategy: {kind: fixed, models: [native]}
""",
)

CHAT = "POST /v1/chat/completions"
MESSAGES = "POST /v1/messages"
COUNT = "POST /v1/messages/count_tokens"
RESPONSES_DOOR = "POST /v1/responses"
ROUTED = (CHAT, MESSAGES, RESPONSES_DOOR)
MODELS = "GET /v1/models"
MODEL = "GET /v1/models/{model_id}"
GETS = (MODELS, MODEL, "GET /healthz", "GET /readyz")
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE

# Hypothesis examples per (variant, operation, mode). An operation with nothing to vary (the
# GET endpoints) stops after its one distinct case, so the executed total is what is asserted.
FUZZ: dict[tuple[str, str], dict[GenerationMode, int]] = {
    ("served", CHAT): {POSITIVE: 140, NEGATIVE: 130},
    ("body", CHAT): {POSITIVE: 110, NEGATIVE: 160},
    ("streamed", CHAT): {POSITIVE: 60, NEGATIVE: 70},
    ("served", MESSAGES): {POSITIVE: 70, NEGATIVE: 70},
    ("body", MESSAGES): {POSITIVE: 60, NEGATIVE: 90},
    ("streamed", MESSAGES): {POSITIVE: 40, NEGATIVE: 40},
    ("body", COUNT): {POSITIVE: 30, NEGATIVE: 40},
    ("served", RESPONSES_DOOR): {POSITIVE: 50, NEGATIVE: 50},
    ("body", RESPONSES_DOOR): {POSITIVE: 70, NEGATIVE: 90},
    ("streamed", RESPONSES_DOOR): {POSITIVE: 40, NEGATIVE: 40},
    **{("served", label): {POSITIVE: 5} for label in GETS},
}
# Coverage cases of the served document's body fields would all carry the minimal header
# values (a 0 USD cost ceiling) and stop at 422; the header-less variants reach the upstreams.
COVERAGE = (
    [("served", label) for label in GETS]
    + [(variant, label) for variant in ("body", "streamed") for label in ROUTED]
    + [("body", COUNT)]
)
MIN_FUZZED = 1000
# Deeper local runs: MODELROUTE_FUZZ_SCALE=10 multiplies every fuzzing budget (and the time).
SCALE = float(os.environ.get("MODELROUTE_FUZZ_SCALE", "1"))
TIMEOUT_S = 5.0  # per request: connect and read, and the whole exchange by the wall clock

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# What the policy knows, so valid requests reach the upstreams instead of stopping at a 404.
ROUTE_NAMES = ["chat", "assistant", "cheap-only", "triage", "hedged", "served"]
MODEL_NAMES = ["primary", "secondary", "claude", "native"]
ROUTING_HEADERS = {TASK_HEADER, *LIMIT_HEADERS}
OPENAI_ERROR_TYPES = {"invalid_request_error", "upstream_error", "service_unavailable", "timeout"}
ANTHROPIC_ERROR_TYPES = {
    "invalid_request_error",
    "not_found_error",
    "request_too_large",
    "api_error",
    "overloaded_error",
}
REQUESTS = (
    "ChatCompletionRequest",
    "MessagesRequest",
    "MessageCountTokensRequest",
    "ResponsesRequest",
)
RESPONSES = {
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionStreamEvent",
    "OpenAIError",
    "AnthropicMessage",
    "AnthropicStreamEvent",
    "AnthropicError",
    "Model",
    "ModelList",
    "AnthropicModelInfo",
    "AnthropicModelList",
    "Response",
    "ResponseStreamEvent",
}


def _fast_sim() -> dict[str, Any]:
    quick = {"latency_ms": {"p50": 1}, "ttft_ms": {"p50": 1}}
    return sim_config(**{name: quick for name in ("primary-sim", "secondary-sim", "claude-sim")})


# -- the document, steered for generation ---------------------------------------------------


def _tailored(spec: dict[str, Any]) -> dict[str, Any]:
    """The served document, narrowed for generation (it describes the API; this steers the
    fuzzer). ``model`` is required and, like the task header, names this policy's routes and
    models, so valid requests reach the upstreams instead of stopping at a 404 (invalid ones
    still drop it or make it an unknown name). Nested request objects are closed and
    free-form ones (tool parameters, JSON schemas) kept small: valid requests stay realistic
    and generation is several times faster. The request objects themselves stay open:
    unknown top-level fields pass through to the upstream (but a Responses request's: the
    bridge refuses those, so valid requests would rarely get through)."""
    spec = copy.deepcopy(spec)
    schemas = spec["components"]["schemas"]
    for name, schema in schemas.items():
        if name in RESPONSES:
            continue
        if name in REQUESTS:
            for prop in schema["properties"].values():
                _close(prop)
            schema["maxProperties"] = 10
            if name == "ResponsesRequest":  # what the bridge does not know it refuses (400)
                schema["additionalProperties"] = False
        else:
            _close(schema)
    names = {"enum": ROUTE_NAMES + MODEL_NAMES}
    for name in REQUESTS:
        schemas[name]["properties"]["model"] = names
        if "model" not in schemas[name]["required"]:  # this policy has no default route
            schemas[name]["required"] = ["model", *schemas[name]["required"]]
    for operation in _routed(spec):
        for parameter in operation["parameters"]:
            if parameter["name"] == "x-modelroute-task":
                parameter["schema"] = {"enum": ROUTE_NAMES}
    for parameter in spec["paths"]["/v1/models/{model_id}"]["get"]["parameters"]:
        if parameter["name"] == "model_id":  # known names as well as unknown ones
            parameter["schema"] = {"anyOf": [names, {"type": "string", "minLength": 1}]}
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


def _routed(spec: dict[str, Any]) -> Iterable[dict[str, Any]]:
    return (spec["paths"][label.split(" ")[1]]["post"] for label in ROUTED)


def _without_routing_headers(spec: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    for operation in _routed(spec):
        operation["parameters"] = [
            p for p in operation["parameters"] if p["name"] not in ROUTING_HEADERS
        ]
    return spec


def _streamed(spec: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    for name in REQUESTS:
        schema = spec["components"]["schemas"][name]
        schema["properties"]["stream"] = {"const": True}
        schema["required"] = [*schema["required"], "stream"]
    return spec


def _variants(served: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tailored = _tailored(served)
    body = _without_routing_headers(tailored)
    return {"served": tailored, "body": body, "streamed": _streamed(body)}


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
    kinds = ("text", "tool_use", "thinking", "redacted_thinking")
    assert all(isinstance(b, dict) and b.get("type") in kinds for b in content)
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


def _responses_stream(response: Response) -> None:
    """The Responses API's events, each valid for the SDK's model of its type, numbered in
    order, ending in ``response.completed`` (or ``response.incomplete``): never a failure."""
    events = _events(response)
    names = [name for name, _ in events]
    assert names[:2] == ["response.created", "response.in_progress"], names
    assert names[-1] in ("response.completed", "response.incomplete"), names
    assert "error" not in names and "response.failed" not in names, response.content[-300:]
    for number, (name, data) in enumerate(events):
        event = orjson.loads(data)
        assert event.get("type") == name and event.get("sequence_number") == number, event
        valid_event(event)


def _responses_object(body: Any) -> None:
    response = valid_response(body)
    assert response.status in ("completed", "incomplete"), body
    assert response.output, f"an empty response: {body!r}"
    assert response.usage is not None and response.usage.output_tokens >= 0, body


def _anthropic_caller(label: str, case: Case[Any]) -> bool:
    """Whether errors (and model lists) answer in Anthropic's format."""
    headers = {name.lower() for name in case.headers or {}}
    return label in (MESSAGES, COUNT) or bool(headers & {"anthropic-version", "x-api-key"})


def _check(label: str, case: Case[Any], response: Response) -> None:
    status = response.status_code
    assert status < 500, f"{status} with a healthy upstream: {response.content[:500]!r}"
    anthropic = _anthropic_caller(label, case)
    if case.method.upper() != label.split(" ")[0]:
        # An undeclared method: 405 with Allow, in the caller's error format.
        assert status == 405, status
        assert response.headers.get("allow"), response.headers
        if anthropic:
            _anthropic_error(response)
        else:
            _openai_error(response)
        return
    if label in (COUNT, MODELS, MODEL) and status >= 400:
        assert status in (400, 404, 413), status
        if anthropic:
            _anthropic_error(response)
        else:
            _openai_error(response)
    elif label == COUNT:
        assert isinstance(_json(response).get("input_tokens"), int), response.content
    streamed = isinstance(case.body, dict) and bool(case.body.get("stream"))
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
    elif label == RESPONSES_DOOR:
        if status >= 400:
            _openai_error(response)
        elif streamed:
            _responses_stream(response)
        else:
            _responses_object(_json(response))
    elif label not in (COUNT, MODELS, MODEL):
        assert status == 200, response.content[:500]
    case.validate_response(response, checks=CHECKS)


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Tally:
    fuzzed: int = 0
    covered: int = 0
    routed: int = 0  # requests that reached a routed endpoint with its own method
    statuses: Counter[tuple[str, str, str, int]] = field(default_factory=Counter)


@dataclass
class Runner:
    url: str
    session: requests.Session
    tally: Tally

    def send(self, phase: str, variant: str, label: str, case: Case[Any]) -> None:
        started = time.monotonic()
        response = case.call(base_url=self.url, session=self.session, timeout=TIMEOUT_S)
        took = time.monotonic() - started
        mode = case.meta.generation.mode.value if case.meta is not None else "?"
        self.tally.statuses[f"{phase}/{variant}", label, mode, response.status_code] += 1
        if label in ROUTED and case.method.upper() == "POST":
            self.tally.routed += 1
        try:
            assert took < TIMEOUT_S, f"took {took:.1f} s"
            _check(label, case, response)
        except (AssertionError, ValidationError) as exc:
            exc.add_note(f"{phase}/{variant}: reproduce with: {case.as_curl_command()}")
            raise

    def coverage(self, schema: BaseSchema, variant: str, label: str) -> None:
        method, path = label.split(" ")
        operation = schema[path][method]
        cases = schema.iter_coverage_cases(
            operation,
            generation_modes=[POSITIVE, NEGATIVE],
            generation_config=schema.config.generation_for(operation=operation),
        )
        for case in cases:
            self.tally.covered += 1
            self.send("coverage", variant, label, case)

    def fuzz(
        self, schema: BaseSchema, variant: str, label: str, mode: GenerationMode, n: int
    ) -> None:
        method, path = label.split(" ")
        strategy = schema[path][method].as_strategy(generation_mode=mode)

        @settings(
            max_examples=n,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        )
        @given(case=strategy)
        def one(case: Case[Any]) -> None:
            self.tally.fuzzed += 1
            self.send("fuzz", variant, label, case)

        one()


def _fuzz(url: str) -> Tally:
    """Runs in a worker thread: blocking HTTP while the gateway serves on the test's loop."""
    served = requests.get(f"{url}/openapi.json", timeout=TIMEOUT_S).json()
    assert served == openapi_spec()
    config = schemathesis.Config.from_dict(
        {"request-timeout": TIMEOUT_S, "max-stream-events": 10_000}
    )
    schemas = {
        name: schemathesis.openapi.from_dict(spec, config=config)
        for name, spec in _variants(served).items()
    }
    tally = Tally()
    with requests.Session() as session:
        runner = Runner(url, session, tally)
        for variant, label in COVERAGE:
            runner.coverage(schemas[variant], variant, label)
        for (variant, label), budget in FUZZ.items():
            for mode, examples in budget.items():
                runner.fuzz(schemas[variant], variant, label, mode, max(1, round(examples * SCALE)))
    return tally


async def test_fuzz_the_http_api_from_its_openapi_document() -> None:
    started = time.monotonic()
    async with gateway(FUZZ_POLICY, _fast_sim()) as gw:
        tally = await asyncio.to_thread(_fuzz, gw.url)
        records = gw.records()
    summary = "\n".join(f"  {k}: {v}" for k, v in sorted(tally.statuses.items()))
    print(
        f"\n{tally.fuzzed} fuzzed and {tally.covered} coverage cases in "
        f"{time.monotonic() - started:.1f} s, by (phase/variant, operation, mode, status):\n"
        f"{summary}"
    )
    assert tally.fuzzed >= MIN_FUZZED, summary
    # Every request that reached a routed endpoint left exactly one record, refused or not.
    assert len(records) == tally.routed
