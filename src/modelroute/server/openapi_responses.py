"""The OpenAPI schemas and operation of the Responses API front door (``POST /v1/responses``).

The request schema names the parameters the door reads; others pass through (to an upstream
that serves the Responses API) or are refused with a 400 naming them (when only the Chat
Completions bridge can serve the request).
"""

from __future__ import annotations

from typing import Any

from modelroute.server.openapi_common import (
    INT,
    JSON,
    NULLABLE_STRING,
    ROUTING_METADATA,
    SSE,
    STRING,
    Schema,
    nullable,
    obj,
    ref,
)

_ITEM = {
    "type": "object",
    "description": "An input item: a message (`role`, `content`), a `function_call`, a "
    "`function_call_output`; other item types need a model that serves the Responses API.",
    "properties": {"type": STRING, "role": STRING},
}
_USAGE = obj(
    {
        "input_tokens": INT,
        "input_tokens_details": obj({"cached_tokens": INT, "cache_write_tokens": INT}),
        "output_tokens": INT,
        "output_tokens_details": obj({"reasoning_tokens": INT}),
        "total_tokens": INT,
    },
    ("input_tokens", "output_tokens", "total_tokens"),
)

RESPONSES_SCHEMAS: dict[str, Schema] = {
    "ResponsesRequest": obj(
        {
            "model": {
                "type": "string",
                "minLength": 1,
                "description": "A route, alias or model of the policy.",
            },
            "input": {"anyOf": [STRING, {"type": "array", "minItems": 1, "items": _ITEM}]},
            "instructions": NULLABLE_STRING,
            "max_output_tokens": nullable({"type": "integer", "minimum": 1}),
            "temperature": nullable({"type": "number", "minimum": 0, "maximum": 2}),
            "top_p": nullable({"type": "number", "minimum": 0, "maximum": 1}),
            "stream": nullable({"type": "boolean"}),
            "tools": {
                "type": "array",
                "items": obj({"type": STRING, "name": STRING}, ("type",)),
                "description": "Function tools are bridged; built-in tools (web_search, ...) "
                "need a model that serves the Responses API.",
            },
            "tool_choice": {"anyOf": [{"enum": ["auto", "none", "required"]}, {"type": "object"}]},
            "text": obj({"format": obj({"type": STRING}, ("type",)), "verbosity": STRING}),
            "reasoning": obj({"effort": NULLABLE_STRING, "summary": NULLABLE_STRING}),
            "metadata": obj(ROUTING_METADATA, additionalProperties=STRING),
            "previous_response_id": NULLABLE_STRING,
            "store": nullable({"type": "boolean"}),
        },
        ("model", "input"),
        additionalProperties=True,
    ),
    "Response": obj(
        {
            "id": STRING,
            "object": {"const": "response"},
            "created_at": {"type": "number"},
            "status": {"enum": ["completed", "incomplete", "failed", "in_progress"]},
            "model": STRING,
            "output": {"type": "array", "items": obj({"type": STRING}, ("type",))},
            "usage": nullable(_USAGE),
            "error": nullable({"type": "object"}),
            "incomplete_details": nullable({"type": "object"}),
        },
        ("id", "object", "created_at", "model", "output"),
    ),
    "ResponseStreamEvent": obj(
        {"type": STRING, "sequence_number": INT},
        ("type", "sequence_number"),
        description="response.created, response.in_progress, response.output_item.added, "
        "response.content_part.added, response.output_text.delta..., "
        "response.output_text.done, response.content_part.done, response.output_item.done, "
        "response.completed (response.incomplete); a stream broken after its first byte ends "
        "with an error event and response.failed.",
    ),
}


def responses_operation(
    routing_headers: list[Schema], response_headers: dict[str, Any], errors: dict[str, Schema]
) -> dict[str, Any]:
    return {
        "post": {
            "operationId": "createResponse",
            "summary": "Route and run an OpenAI Responses API request.",
            "description": "Forwarded as sent to a model whose upstream serves the Responses "
            "API (capability `responses`), bridged through Chat Completions to any other. A "
            "request the bridge cannot carry on a route with no such model is a 400 "
            "(`not_bridgeable`) naming each part.",
            "parameters": routing_headers,
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": ref("ResponsesRequest")}},
            },
            "responses": {
                "200": {
                    "description": "A response object, or the Responses API's stream events "
                    "when `stream` is true.",
                    "headers": response_headers,
                    "content": {
                        JSON: {"schema": ref("Response")},
                        SSE: {"schema": ref("ResponseStreamEvent")},
                    },
                },
                **errors,
            },
        }
    }
