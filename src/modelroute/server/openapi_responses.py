"""The OpenAPI schemas and operations of the Responses API front door (``POST /v1/responses``)
and of its stored responses (``GET``/``DELETE /v1/responses/{response_id}``, ``GET
/v1/responses/{response_id}/input_items``).

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

_CONTENT = {
    "anyOf": [
        STRING,
        {
            "type": "array",
            "items": obj({"type": STRING, "text": STRING}, ("type",)),
            "description": "Content parts: input_text, output_text, input_image (image_url) "
            "are bridged; others need a model that serves the Responses API.",
        },
    ]
}
_ITEM = {
    "description": "An input item: a message (`role`, `content`), a `function_call`, a "
    "`function_call_output`; other item types need a model that serves the Responses API.",
    "anyOf": [
        obj(
            {
                "type": {"const": "message"},
                "role": {"enum": ["user", "assistant", "system", "developer"]},
                "content": _CONTENT,
            },
            ("role", "content"),
        ),
        obj(
            {
                "type": {"const": "function_call"},
                "call_id": STRING,
                "name": STRING,
                "arguments": STRING,
            },
            ("type", "call_id", "name", "arguments"),
        ),
        obj(
            {"type": {"const": "function_call_output"}, "call_id": STRING, "output": _CONTENT},
            ("type", "call_id", "output"),
        ),
        obj({"type": STRING}, ("type",)),
    ],
}
_TOOL_CHOICE = {
    "anyOf": [
        {"enum": ["auto", "none", "required"]},
        obj({"type": {"const": "function"}, "name": STRING}, ("type", "name")),
        obj({"type": STRING}, ("type",)),
    ]
}
_EFFORT = ["none", "minimal", "low", "medium", "high", "xhigh", "max"]
_SUMMARY = ["auto", "concise", "detailed"]
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
            "tool_choice": _TOOL_CHOICE,
            "text": obj(
                {
                    "format": obj({"type": STRING}, ("type",)),
                    "verbosity": nullable({"enum": ["low", "medium", "high"]}),
                }
            ),
            "reasoning": obj(
                {"effort": nullable({"enum": _EFFORT}), "summary": nullable({"enum": _SUMMARY})}
            ),
            "metadata": obj(
                ROUTING_METADATA,
                additionalProperties={"type": "string", "maxLength": 512},
                maxProperties=16,
            ),
            "previous_response_id": NULLABLE_STRING,
            "store": nullable({"type": "boolean"}),
            "parallel_tool_calls": nullable({"type": "boolean"}),
            "service_tier": nullable({"enum": ["auto", "default", "flex", "scale", "priority"]}),
            "truncation": nullable({"enum": ["auto", "disabled"]}),
            "top_logprobs": nullable({"type": "integer", "minimum": 0, "maximum": 20}),
            "user": NULLABLE_STRING,
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
    "ResponseDeleted": obj(
        {"id": STRING, "object": {"const": "response"}, "deleted": {"const": True}},
        ("id", "object", "deleted"),
    ),
    "ResponseItemList": obj(
        {
            "object": {"const": "list"},
            "data": {"type": "array", "items": obj({"type": STRING, "id": STRING}, ("type",))},
            "first_id": NULLABLE_STRING,
            "last_id": NULLABLE_STRING,
            "has_more": {"type": "boolean"},
        },
        ("object", "data", "first_id", "last_id", "has_more"),
    ),
    "ResponseStreamEvent": obj(
        {
            "event": STRING,
            "data": {
                "type": "string",
                "contentMediaType": JSON,
                "contentSchema": obj(
                    {"type": STRING, "sequence_number": INT}, ("type", "sequence_number")
                ),
            },
        },
        ("event", "data"),
        description="One server-sent event; `data.type` repeats the event name: "
        "response.created, response.in_progress, response.output_item.added, "
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


_RESPONSE_ID = {
    "name": "response_id",
    "in": "path",
    "required": True,
    "schema": STRING,
    "description": "The id of a response the gateway returned with `store` true (the default).",
}
_LIST_PARAMETERS = [
    {"name": "after", "in": "query", "required": False, "schema": STRING,
     "description": "An item id: the items after it, in `order`."},
    {"name": "limit", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
    {"name": "order", "in": "query", "required": False,
     "schema": {"enum": ["asc", "desc"], "default": "desc"}},
]  # fmt: skip

_REPLAY_PARAMETERS = [
    {"name": "stream", "in": "query", "required": False,
     "schema": {"type": "boolean", "default": False},
     "description": "true: the response as its event stream (response.created ... "
     "response.completed), each event numbered by `sequence_number` from 0."},
    {"name": "starting_after", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 0},
     "description": "With `stream=true`: the events after this sequence number."},
]  # fmt: skip


def stored_response_paths(errors: dict[str, Schema]) -> dict[str, Any]:
    """The stored responses' operations; ``errors``: the error responses by status (their
    content is used, described here)."""
    not_found = {
        "404": {
            "description": "No stored response has this id (unknown, expired, deleted, or "
            "created with another API key).",
            "content": errors["404"]["content"],
        },
        "503": {
            "description": "The shared store (Redis) cannot be reached (`store_unavailable`).",
            "content": errors["503"]["content"],
        },
    }

    def one(operation_id: str, summary: str, schema: str) -> dict[str, Any]:
        return {
            "operationId": operation_id,
            "summary": summary,
            "parameters": [_RESPONSE_ID],
            "responses": {
                "200": {"description": summary, "content": {JSON: {"schema": ref(schema)}}},
                **not_found,
            },
        }

    items = one(
        "listInputItems",
        "The input items of a stored response: the whole conversation it answered.",
        "ResponseItemList",
    )
    items["parameters"] = [_RESPONSE_ID, *_LIST_PARAMETERS]
    items["responses"]["400"] = {
        "description": "A paging parameter is invalid.",
        "content": errors["400"]["content"],
    }
    get = one("getResponse", "A stored response, as it was returned.", "Response")
    get["parameters"] = [_RESPONSE_ID, *_REPLAY_PARAMETERS]
    get["responses"]["200"]["description"] = (
        "The stored response; with `stream=true` its event stream, replayed from it."
    )
    get["responses"]["200"]["content"][SSE] = {"schema": ref("ResponseStreamEvent")}
    get["responses"]["400"] = {
        "description": "`starting_after` is not a non-negative integer.",
        "content": errors["400"]["content"],
    }
    return {
        "/v1/responses/{response_id}": {
            "get": get,
            "delete": one("deleteResponse", "Delete a stored response.", "ResponseDeleted"),
        },
        "/v1/responses/{response_id}/input_items": {"get": items},
    }
