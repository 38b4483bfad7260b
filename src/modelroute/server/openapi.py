"""The gateway's HTTP API as an OpenAPI 3.1 document, served at ``GET /openapi.json``.

It describes what clients may send and what they get back, errors included, in each front
door's own format: OpenAI's ``{"error": {message, type, param, code}}`` on
``/v1/chat/completions`` and ``/v1/responses``, and Anthropic's
``{"type": "error", "error": {type, message}}`` on ``/v1/messages``. The request schemas
follow the upstream APIs closely enough for fuzzers and client generators; the gateway
itself validates only what routing needs and passes unknown fields through to the provider.
The tests fuzz the running gateway from this document.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson

from modelroute.features import LIMIT_HEADERS, TASK_HEADER
from modelroute.server.openapi_anthropic import ANTHROPIC_SCHEMAS
from modelroute.server.openapi_common import (
    INT,
    JSON,
    NULLABLE_STRING,
    SSE,
    STRING,
    Schema,
    obj,
    ref,
)
from modelroute.server.openapi_models import MODEL_PATHS, MODEL_SCHEMAS
from modelroute.server.openapi_openai import OPENAI_SCHEMAS
from modelroute.server.openapi_responses import (
    RESPONSES_SCHEMAS,
    responses_operation,
    stored_response_paths,
)

# -- operations ----------------------------------------------------------------------------


_LIMITS = {
    "max_cost_usd": "Cost ceiling in USD for this request.",
    "max_latency_ms": "Latency budget in milliseconds for this request.",
    "min_quality": "Minimum quality for this request's task, between 0 and 1.",
}


def _routing_headers() -> list[Schema]:
    """The x-modelroute-* request headers: a task, and limits that may only tighten the
    route's own (``metadata`` may carry the same under these names or the field names)."""
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
        "schema": STRING,
    },
    "x-request-id": {
        "description": "The same id, where the openai SDK reads it (on every response).",
        "schema": STRING,
    },
    "request-id": {
        "description": "The same id, where the anthropic SDK reads it (on every response).",
        "schema": STRING,
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
            "content": {JSON: {"schema": ref(schema)}},
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
                    "content": {JSON: {"schema": ref("ChatCompletionRequest")}},
                },
                "responses": {
                    "200": {
                        "description": "A chat.completion, or chat.completion.chunk events "
                        "ending in `data: [DONE]` when `stream` is true.",
                        "headers": _RESPONSE_HEADERS,
                        "content": {
                            JSON: {"schema": ref("ChatCompletion")},
                            SSE: {"schema": ref("ChatCompletionStreamEvent")},
                        },
                    },
                    **_errors("OpenAIError"),
                },
            }
        },
        "/v1/responses": responses_operation(
            _routing_headers(), _RESPONSE_HEADERS, _errors("OpenAIError")
        ),
        **stored_response_paths(_errors("OpenAIError")),
        "/v1/messages": {
            "post": {
                "operationId": "createMessage",
                "summary": "Route and run an Anthropic Messages request.",
                "parameters": [
                    {
                        "name": "anthropic-version",
                        "in": "header",
                        "required": False,
                        "schema": STRING,
                    },
                    *_routing_headers(),
                ],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": ref("MessagesRequest")}},
                },
                "responses": {
                    "200": {
                        "description": "A Message, or Anthropic's stream events when "
                        "`stream` is true.",
                        "headers": _RESPONSE_HEADERS,
                        "content": {
                            JSON: {"schema": ref("AnthropicMessage")},
                            SSE: {"schema": ref("AnthropicStreamEvent")},
                        },
                    },
                    **_errors("AnthropicError"),
                },
            }
        },
        "/v1/messages/count_tokens": {
            "post": {
                "operationId": "countMessageTokens",
                "summary": "The prompt's tokens, as routing estimates them.",
                "description": "An offline estimate with OpenAI's o200k tokenizer, the one the "
                "planner uses for its constraints; Claude's own tokenizer counts differently (by "
                "a few percent to tens of percent). Not routed: nothing is sent upstream.",
                "parameters": [
                    {
                        "name": "anthropic-version",
                        "in": "header",
                        "required": False,
                        "schema": STRING,
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": ref("MessageCountTokensRequest")}},
                },
                "responses": {
                    "200": {
                        "description": "The estimate.",
                        "content": {
                            JSON: {"schema": obj({"input_tokens": INT}, ("input_tokens",))}
                        },
                    },
                    **{
                        status: error
                        for status, error in _errors("AnthropicError").items()
                        if status in ("400", "404", "413")
                    },
                },
            }
        },
        **MODEL_PATHS,
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness.",
                "responses": {
                    "200": {
                        "description": "The process is up.",
                        "content": {
                            JSON: {"schema": obj({"status": {"const": "ok"}}, ("status",))}
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
                                "schema": obj(
                                    {
                                        "status": {"const": "ready"},
                                        "policy_hash": STRING,
                                        "policy_version": NULLABLE_STRING,
                                        "circuits": {
                                            "type": "object",
                                            "additionalProperties": STRING,
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
            "schemas": {
                **OPENAI_SCHEMAS,
                **RESPONSES_SCHEMAS,
                **ANTHROPIC_SCHEMAS,
                **MODEL_SCHEMAS,
            }
        },
    }


@lru_cache(maxsize=1)
def openapi_text() -> str:
    """The document as JSON text, built once per process."""
    return orjson.dumps(_build()).decode()


def openapi_spec() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the gateway's HTTP API (a fresh copy the caller may edit)."""
    return dict(orjson.loads(openapi_text()))
