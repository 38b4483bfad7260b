"""The gateway's HTTP API as an OpenAPI 3.1 document, served at ``GET /openapi.json``.

It describes what clients may send and what they get back, errors included, in each front
door's own format: OpenAI's ``{"error": {message, type, param, code}}`` on
``/v1/chat/completions`` and Anthropic's ``{"type": "error", "error": {type, message}}`` on
``/v1/messages``. The request schemas follow the upstream APIs closely enough for fuzzers and
client generators; the gateway itself validates only what routing needs and passes unknown
fields through to the provider. The tests fuzz the running gateway from this document.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson

from modelroute.features import LIMIT_HEADERS, TASK_HEADER

JSON = "application/json"
SSE = "text/event-stream"

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: Schema, required: tuple[str, ...] = (), **extra: Any) -> Schema:
    schema: Schema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    return schema


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_INT = {"type": "integer"}
_COUNT = {"type": "integer", "minimum": 0}
_TOOL_NAME = {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"}
_DECIMAL = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}
# Metadata fields routing reads (strings, as OpenAI's metadata values are).
_ROUTING_METADATA: Schema = {
    "task": {"type": "string", "maxLength": 512},
    "max_cost_usd": _DECIMAL,
    "max_latency_ms": _DECIMAL,
    "min_quality": {"type": "string", "pattern": r"^(0(\.[0-9]+)?|1(\.0+)?)$"},
}


# -- OpenAI Chat Completions -----------------------------------------------------------------

_OPENAI_SCHEMAS: dict[str, Schema] = {
    "TextPart": _obj(
        {"type": {"const": "text"}, "text": _STRING},
        ("type", "text"),
    ),
    "ImagePart": _obj(
        {
            "type": {"const": "image_url"},
            "image_url": _obj(
                {"url": _STRING, "detail": {"enum": ["auto", "low", "high"]}}, ("url",)
            ),
        },
        ("type", "image_url"),
    ),
    "UserContent": {
        "anyOf": [
            _STRING,
            {
                "type": "array",
                "minItems": 1,
                "items": {"anyOf": [_ref("TextPart"), _ref("ImagePart")]},
            },
        ]
    },
    "TextContent": {
        "anyOf": [_STRING, {"type": "array", "minItems": 1, "items": _ref("TextPart")}]
    },
    "SystemMessage": _obj(
        {
            "role": {"enum": ["system", "developer"]},
            "content": _ref("TextContent"),
            "name": _STRING,
        },
        ("role", "content"),
    ),
    "UserMessage": _obj(
        {"role": {"const": "user"}, "content": _ref("UserContent"), "name": _STRING},
        ("role", "content"),
    ),
    "ToolCall": _obj(
        {
            "id": _STRING,
            "type": {"const": "function"},
            "function": _obj({"name": _TOOL_NAME, "arguments": _STRING}, ("name", "arguments")),
        },
        ("id", "type", "function"),
    ),
    "AssistantMessage": _obj(
        {
            "role": {"const": "assistant"},
            "content": _nullable(_ref("TextContent")),
            "name": _STRING,
            "refusal": _NULLABLE_STRING,
            "tool_calls": {"type": "array", "items": _ref("ToolCall")},
        },
        ("role",),
    ),
    "ToolMessage": _obj(
        {"role": {"const": "tool"}, "content": _ref("TextContent"), "tool_call_id": _STRING},
        ("role", "content", "tool_call_id"),
    ),
    "Message": {
        "anyOf": [
            _ref("SystemMessage"),
            _ref("UserMessage"),
            _ref("AssistantMessage"),
            _ref("ToolMessage"),
        ]
    },
    "Tool": _obj(
        {
            "type": {"const": "function"},
            "function": _obj(
                {
                    "name": _TOOL_NAME,
                    "description": _STRING,
                    "parameters": {"type": "object"},
                    "strict": {"type": ["boolean", "null"]},
                },
                ("name",),
            ),
        },
        ("type", "function"),
    ),
    "ToolChoice": {
        "anyOf": [
            {"enum": ["none", "auto", "required"]},
            _obj(
                {"type": {"const": "function"}, "function": _obj({"name": _TOOL_NAME}, ("name",))},
                ("type", "function"),
            ),
        ]
    },
    "ResponseFormat": {
        "anyOf": [
            _obj({"type": {"enum": ["text", "json_object"]}}, ("type",)),
            _obj(
                {
                    "type": {"const": "json_schema"},
                    "json_schema": _obj(
                        {
                            "name": _TOOL_NAME,
                            "description": _STRING,
                            "schema": {"type": "object"},
                            "strict": {"type": ["boolean", "null"]},
                        },
                        ("name",),
                    ),
                },
                ("type", "json_schema"),
            ),
        ]
    },
    "ChatCompletionRequest": _obj(
        {
            "model": {
                "type": "string",
                "minLength": 1,
                "description": "A route, an alias of a route, or a model of the policy. "
                "Without it the route is found by task, by the policy's match rules, or is "
                "its default route.",
            },
            "messages": {"type": "array", "minItems": 1, "items": _ref("Message")},
            "stream": {"type": ["boolean", "null"]},
            "stream_options": _nullable(_obj({"include_usage": {"type": "boolean"}})),
            "max_tokens": {"type": ["integer", "null"], "minimum": 1},
            "max_completion_tokens": {"type": ["integer", "null"], "minimum": 1},
            "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
            "top_p": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "stop": {
                "anyOf": [
                    _STRING,
                    {"type": "array", "items": _STRING, "maxItems": 4},
                    {"type": "null"},
                ]
            },
            "tools": {"type": "array", "items": _ref("Tool")},
            "tool_choice": _ref("ToolChoice"),
            "response_format": _ref("ResponseFormat"),
            "logprobs": {"type": ["boolean", "null"]},
            "top_logprobs": {"type": ["integer", "null"], "minimum": 0, "maximum": 20},
            "metadata": _nullable(
                {
                    "type": "object",
                    "maxProperties": 16,
                    "properties": _ROUTING_METADATA,
                    "additionalProperties": {"type": "string", "maxLength": 512},
                    "description": "`task` selects the route like x-modelroute-task; "
                    "`max_cost_usd`, `max_latency_ms` and `min_quality` tighten its limits "
                    "like the x-modelroute-* headers (which win).",
                }
            ),
        },
        ("messages",),
        description="An OpenAI Chat Completions request. Fields not listed pass through to "
        "the provider untouched.",
    ),
    "ChatCompletion": _obj(
        {
            "id": _STRING,
            "object": {"const": "chat.completion"},
            "created": _INT,
            "model": _STRING,
            "system_fingerprint": _NULLABLE_STRING,
            "choices": {
                "type": "array",
                "items": _obj(
                    {
                        "index": _INT,
                        "message": _obj(
                            {
                                "role": {"const": "assistant"},
                                "content": _NULLABLE_STRING,
                                "refusal": _NULLABLE_STRING,
                                "tool_calls": {
                                    "type": "array",
                                    "items": _obj(
                                        {
                                            "id": _STRING,
                                            "type": _STRING,
                                            "function": _obj(
                                                {"name": _STRING, "arguments": _STRING},
                                                ("name", "arguments"),
                                            ),
                                        },
                                        ("id", "type", "function"),
                                    ),
                                },
                            },
                            ("role",),
                        ),
                        "finish_reason": _NULLABLE_STRING,
                        "logprobs": {"type": ["object", "null"]},
                    },
                    ("index", "message", "finish_reason"),
                ),
            },
            "usage": _obj(
                {
                    "prompt_tokens": _COUNT,
                    "completion_tokens": _COUNT,
                    "total_tokens": _COUNT,
                },
                ("prompt_tokens", "completion_tokens", "total_tokens"),
            ),
        },
        ("id", "object", "created", "model", "choices"),
    ),
    "ChatCompletionChunk": _obj(
        {
            "id": _STRING,
            "object": {"const": "chat.completion.chunk"},
            "created": _INT,
            "model": _STRING,
            "choices": {
                "type": "array",
                "items": _obj(
                    {
                        "index": _INT,
                        "delta": {"type": "object"},
                        "finish_reason": _NULLABLE_STRING,
                        "logprobs": {"type": ["object", "null"]},
                    },
                    ("index", "delta"),
                ),
            },
            "usage": {"type": ["object", "null"]},
        },
        ("id", "object", "created", "model", "choices"),
    ),
    "ChatCompletionStreamEvent": _obj(
        {
            "event": _STRING,
            "data": {
                "anyOf": [
                    {"const": "[DONE]"},
                    {
                        "type": "string",
                        "contentMediaType": JSON,
                        "contentSchema": {
                            "anyOf": [_ref("ChatCompletionChunk"), _ref("OpenAIError")]
                        },
                    },
                ]
            },
        },
        ("data",),
        description="One server-sent event: a chunk, the final `[DONE]`, or an error object "
        "when the stream fails after its first byte.",
    ),
    "OpenAIError": _obj(
        {
            "error": _obj(
                {
                    "message": _STRING,
                    "type": _STRING,
                    "param": _NULLABLE_STRING,
                    "code": _NULLABLE_STRING,
                    "rejections": {
                        "type": "array",
                        "description": "422: why each candidate model was rejected.",
                    },
                    "attempts": {
                        "type": "array",
                        "description": "502/503/504 (and 400 from upstream): every attempt.",
                    },
                },
                ("message", "type", "param", "code"),
            )
        },
        ("error",),
    ),
}


# -- Anthropic Messages ------------------------------------------------------------------------

_ANTHROPIC_ERROR_TYPES = [
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
]

_ANTHROPIC_SCHEMAS: dict[str, Schema] = {
    "AnthropicTextBlock": _obj(
        {"type": {"const": "text"}, "text": _STRING, "cache_control": {"type": "object"}},
        ("type", "text"),
    ),
    "AnthropicImageBlock": _obj(
        {
            "type": {"const": "image"},
            "source": {
                "anyOf": [
                    _obj(
                        {
                            "type": {"const": "base64"},
                            "media_type": {
                                "enum": ["image/jpeg", "image/png", "image/gif", "image/webp"]
                            },
                            "data": _STRING,
                        },
                        ("type", "media_type", "data"),
                    ),
                    _obj({"type": {"const": "url"}, "url": _STRING}, ("type", "url")),
                ]
            },
        },
        ("type", "source"),
    ),
    "AnthropicToolUseBlock": _obj(
        {
            "type": {"const": "tool_use"},
            "id": _STRING,
            "name": _TOOL_NAME,
            "input": {"type": "object"},
        },
        ("type", "id", "name", "input"),
    ),
    "AnthropicToolResultBlock": _obj(
        {
            "type": {"const": "tool_result"},
            "tool_use_id": {"type": "string", "minLength": 1},
            "content": {"anyOf": [_STRING, {"type": "array", "items": _ref("AnthropicTextBlock")}]},
            "is_error": {"type": "boolean"},
        },
        ("type", "tool_use_id"),
    ),
    "AnthropicUserMessage": _obj(
        {
            "role": {"const": "user"},
            "content": {
                "anyOf": [
                    _STRING,
                    {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "anyOf": [
                                _ref("AnthropicTextBlock"),
                                _ref("AnthropicImageBlock"),
                                _ref("AnthropicToolResultBlock"),
                            ]
                        },
                    },
                ]
            },
        },
        ("role", "content"),
    ),
    "AnthropicAssistantMessage": _obj(
        {
            "role": {"const": "assistant"},
            "content": {
                "anyOf": [
                    _STRING,
                    {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "anyOf": [
                                _ref("AnthropicTextBlock"),
                                _ref("AnthropicToolUseBlock"),
                            ]
                        },
                    },
                ]
            },
        },
        ("role", "content"),
    ),
    "AnthropicTool": _obj(
        {
            "name": _TOOL_NAME,
            "description": _STRING,
            "input_schema": {"type": "object"},
            "type": {"const": "custom"},
        },
        ("name", "input_schema"),
    ),
    "AnthropicToolChoice": {
        "anyOf": [
            _obj(
                {
                    "type": {"enum": ["auto", "any", "none"]},
                    "disable_parallel_tool_use": {"type": "boolean"},
                },
                ("type",),
            ),
            _obj(
                {
                    "type": {"const": "tool"},
                    "name": _TOOL_NAME,
                    "disable_parallel_tool_use": {"type": "boolean"},
                },
                ("type", "name"),
            ),
        ]
    },
    "MessagesRequest": _obj(
        {
            "model": {
                "type": "string",
                "minLength": 1,
                "description": "A route, an alias of a route, or a model of the policy.",
            },
            "max_tokens": {"type": "integer", "minimum": 1},
            "messages": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "anyOf": [_ref("AnthropicUserMessage"), _ref("AnthropicAssistantMessage")]
                },
            },
            "system": {"anyOf": [_STRING, {"type": "array", "items": _ref("AnthropicTextBlock")}]},
            "stop_sequences": {"type": "array", "items": _STRING},
            "stream": {"type": "boolean"},
            "temperature": {"type": "number", "minimum": 0, "maximum": 1},
            "top_p": {"type": "number", "minimum": 0, "maximum": 1},
            "top_k": {"type": "integer", "minimum": 0},
            "metadata": {
                "type": "object",
                "properties": {"user_id": _NULLABLE_STRING, **_ROUTING_METADATA},
                "description": "Also read for routing, as on /v1/chat/completions.",
            },
            "tools": {"type": "array", "items": _ref("AnthropicTool")},
            "tool_choice": _ref("AnthropicToolChoice"),
        },
        ("model", "max_tokens", "messages"),
        description="An Anthropic Messages request; it is routed like a chat completion.",
    ),
    "AnthropicMessage": _obj(
        {
            "id": _STRING,
            "type": {"const": "message"},
            "role": {"const": "assistant"},
            "model": _STRING,
            "content": {
                "type": "array",
                "items": {
                    "anyOf": [
                        _obj({"type": {"const": "text"}, "text": _STRING}, ("type", "text")),
                        _obj(
                            {
                                "type": {"const": "tool_use"},
                                "id": _STRING,
                                "name": _STRING,
                                "input": {"type": "object"},
                            },
                            ("type", "id", "name", "input"),
                        ),
                    ]
                },
            },
            "stop_reason": _NULLABLE_STRING,
            "stop_sequence": _NULLABLE_STRING,
            "usage": _obj(
                {"input_tokens": _COUNT, "output_tokens": _COUNT},
                ("input_tokens", "output_tokens"),
            ),
        },
        ("id", "type", "role", "model", "content", "stop_reason", "usage"),
    ),
    "AnthropicStreamEvent": _obj(
        {
            "event": {
                "enum": [
                    "message_start",
                    "content_block_start",
                    "content_block_delta",
                    "content_block_stop",
                    "message_delta",
                    "message_stop",
                    "ping",
                    "error",
                ]
            },
            "data": {
                "type": "string",
                "contentMediaType": JSON,
                "contentSchema": _obj({"type": _STRING}, ("type",)),
            },
        },
        ("event", "data"),
        description="One server-sent event of Anthropic's stream; `data.type` repeats the "
        "event name. A failure after the first byte ends the stream with an `error` event.",
    ),
    "AnthropicError": _obj(
        {
            "type": {"const": "error"},
            "error": _obj(
                {"type": {"enum": _ANTHROPIC_ERROR_TYPES}, "message": _STRING},
                ("type", "message"),
            ),
        },
        ("type", "error"),
    ),
}


# -- operations ----------------------------------------------------------------------------


_LIMITS = {
    "max_cost_usd": "Cost ceiling in USD for this request.",
    "max_latency_ms": "Latency budget in milliseconds for this request.",
    "min_quality": "Minimum quality for this request's task, between 0 and 1.",
}


def _routing_headers() -> list[Schema]:
    """The x-modelroute-* request headers: a task, and limits that may only tighten the
    route's own (``metadata`` may carry the same under the field names)."""
    headers: list[Schema] = [
        {
            "name": TASK_HEADER,
            "in": "header",
            "required": False,
            "description": "Selects the route by task when `model` names no route, alias or "
            "model of the policy (as `metadata.task` does).",
            "schema": {"type": "string", "minLength": 1},
        }
    ]
    for name, field in LIMIT_HEADERS.items():
        schema: Schema = {"type": "number", "minimum": 0}
        if field == "min_quality":
            schema["maximum"] = 1
        headers.append(
            {
                "name": name,
                "in": "header",
                "required": False,
                "description": _LIMITS[field],
                "schema": schema,
            }
        )
    return headers


_RESPONSE_HEADERS = {
    "x-modelroute-request-id": {
        "description": "The id of this request's record.",
        "schema": _STRING,
    },
}

_OPENAI_ERRORS = {
    "400": "The request is invalid (body, headers, or refused by every upstream as invalid).",
    "404": "The model names no route, alias or model of the policy.",
    "413": "The request body is too large.",
    "422": "No model satisfies the route's constraints; the rejections say why.",
    "502": "Every attempt failed upstream.",
    "503": "Every attempt failed with the upstream overloaded or rate limited, or every "
    "candidate's circuit breaker is open; Retry-After says when to try again.",
    "504": "Every attempt timed out.",
}


def _errors(schema: str) -> dict[str, Schema]:
    return {
        status: {
            "description": description,
            "headers": _RESPONSE_HEADERS,
            "content": {JSON: {"schema": _ref(schema)}},
        }
        for status, description in _OPENAI_ERRORS.items()
    }


def _operations() -> dict[str, Any]:
    return {
        "/v1/chat/completions": {
            "post": {
                "operationId": "createChatCompletion",
                "summary": "Route and run an OpenAI Chat Completions request.",
                "parameters": _routing_headers(),
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("ChatCompletionRequest")}},
                },
                "responses": {
                    "200": {
                        "description": "A chat.completion, or chat.completion.chunk events "
                        "ending in `data: [DONE]` when `stream` is true.",
                        "headers": _RESPONSE_HEADERS,
                        "content": {
                            JSON: {"schema": _ref("ChatCompletion")},
                            SSE: {"schema": _ref("ChatCompletionStreamEvent")},
                        },
                    },
                    **_errors("OpenAIError"),
                },
            }
        },
        "/v1/messages": {
            "post": {
                "operationId": "createMessage",
                "summary": "Route and run an Anthropic Messages request.",
                "parameters": [
                    {
                        "name": "anthropic-version",
                        "in": "header",
                        "required": False,
                        "schema": _STRING,
                    },
                    *_routing_headers(),
                ],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("MessagesRequest")}},
                },
                "responses": {
                    "200": {
                        "description": "A Message, or Anthropic's stream events when "
                        "`stream` is true.",
                        "headers": _RESPONSE_HEADERS,
                        "content": {
                            JSON: {"schema": _ref("AnthropicMessage")},
                            SSE: {"schema": _ref("AnthropicStreamEvent")},
                        },
                    },
                    **_errors("AnthropicError"),
                },
            }
        },
        "/v1/models": {
            "get": {
                "operationId": "listModels",
                "summary": "The routes, aliases and models of the policy.",
                "responses": {
                    "200": {
                        "description": "An OpenAI model list.",
                        "content": {JSON: {"schema": _ref("ModelList")}},
                    }
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness.",
                "responses": {
                    "200": {
                        "description": "The process is up.",
                        "content": {
                            JSON: {"schema": _obj({"status": {"const": "ok"}}, ("status",))}
                        },
                    }
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness: the policy loaded, and the circuit breakers' state.",
                "responses": {
                    "200": {
                        "description": "Ready to route.",
                        "content": {
                            JSON: {
                                "schema": _obj(
                                    {
                                        "status": {"const": "ready"},
                                        "policy_hash": _STRING,
                                        "policy_version": _NULLABLE_STRING,
                                        "circuits": {
                                            "type": "object",
                                            "additionalProperties": _STRING,
                                        },
                                    },
                                    ("status", "policy_hash"),
                                )
                            }
                        },
                    }
                },
            }
        },
    }


_MODEL_LIST = _obj(
    {
        "object": {"const": "list"},
        "data": {
            "type": "array",
            "items": _obj(
                {
                    "id": _STRING,
                    "object": {"const": "model"},
                    "created": _INT,
                    "owned_by": _STRING,
                    "route": _STRING,
                    "model_id": _STRING,
                },
                ("id", "object", "created", "owned_by"),
            ),
        },
    },
    ("object", "data"),
)


def _build() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "modelroute gateway",
            "version": "1",
            "description": "OpenAI- and Anthropic-compatible endpoints that route each request "
            "to the model best suited to it, by the policy the gateway was started with.",
        },
        "paths": _operations(),
        "components": {
            "schemas": {**_OPENAI_SCHEMAS, **_ANTHROPIC_SCHEMAS, "ModelList": _MODEL_LIST}
        },
    }


@lru_cache(maxsize=1)
def openapi_text() -> str:
    """The document as JSON text, built once per process."""
    return orjson.dumps(_build()).decode()


def openapi_spec() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the gateway's HTTP API (a fresh copy the caller may edit)."""
    return dict(orjson.loads(openapi_text()))
