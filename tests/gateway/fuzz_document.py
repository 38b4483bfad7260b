"""The gateway's OpenAPI document, steered for schemathesis: the operations fuzzed, and the
three variants of the document they are generated from (as served; without the routing
headers; with ``stream`` required)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from modelroute.features import LIMIT_HEADERS, TASK_HEADER

CHAT = "POST /v1/chat/completions"
MESSAGES = "POST /v1/messages"
COUNT = "POST /v1/messages/count_tokens"
RESPONSES_DOOR = "POST /v1/responses"
ROUTED = (CHAT, MESSAGES, RESPONSES_DOOR)
MODELS = "GET /v1/models"
MODEL = "GET /v1/models/{model_id}"
GETS = (MODELS, MODEL, "GET /healthz", "GET /readyz")
# The stored responses' operations: a fuzzed id names no stored response (404).
STORED = (
    "GET /v1/responses/{response_id}",
    "DELETE /v1/responses/{response_id}",
    "GET /v1/responses/{response_id}/input_items",
)
# What the policy knows, so valid requests reach the upstreams instead of stopping at a 404.
ROUTE_NAMES = ["chat", "assistant", "cheap-only", "triage", "hedged", "served"]
MODEL_NAMES = ["primary", "secondary", "claude", "native"]
ROUTING_HEADERS = {TASK_HEADER, *LIMIT_HEADERS}
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
    "ResponseDeleted",
    "ResponseItemList",
}


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


def variants(served: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tailored = _tailored(served)
    body = _without_routing_headers(tailored)
    return {"served": tailored, "body": body, "streamed": _streamed(body)}
