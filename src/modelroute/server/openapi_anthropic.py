"""OpenAPI schemas of the Anthropic Messages front door."""

from __future__ import annotations

from modelroute.request_fields import MAX_COUNT
from modelroute.server.openapi_common import (
    COUNT,
    JSON,
    NULLABLE_STRING,
    ROUTING_METADATA,
    STRING,
    TOOL_NAME,
    Schema,
    obj,
    ref,
)

# -- Anthropic Messages ------------------------------------------------------------------------

ANTHROPIC_ERROR_TYPES = [
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
    "timeout_error",
]

ANTHROPIC_SCHEMAS: dict[str, Schema] = {
    "AnthropicTextBlock": obj(
        {"type": {"const": "text"}, "text": STRING, "cache_control": {"type": "object"}},
        ("type", "text"),
    ),
    "AnthropicImageBlock": obj(
        {
            "type": {"const": "image"},
            "source": {
                "anyOf": [
                    obj(
                        {
                            "type": {"const": "base64"},
                            "media_type": {
                                "enum": ["image/jpeg", "image/png", "image/gif", "image/webp"]
                            },
                            "data": STRING,
                        },
                        ("type", "media_type", "data"),
                    ),
                    obj({"type": {"const": "url"}, "url": STRING}, ("type", "url")),
                ]
            },
        },
        ("type", "source"),
    ),
    "AnthropicThinkingBlock": obj(
        {"type": {"const": "thinking"}, "thinking": STRING, "signature": STRING},
        ("type", "thinking", "signature"),
        description="Claude's thinking, signed; sent back unchanged in a tool loop.",
    ),
    "AnthropicRedactedThinkingBlock": obj(
        {"type": {"const": "redacted_thinking"}, "data": STRING}, ("type", "data")
    ),
    "AnthropicThinking": {
        "anyOf": [
            obj(
                {
                    "type": {"const": "enabled"},
                    "budget_tokens": {"type": "integer", "minimum": 1024},
                    "display": {"enum": ["summarized", "omitted"]},
                },
                ("type", "budget_tokens"),
                description="budget_tokens must be less than max_tokens.",
            ),
            obj({"type": {"const": "disabled"}}, ("type",)),
            obj({"type": {"const": "adaptive"}}, ("type",)),
        ],
        "description": "Passed unchanged to Anthropic-format models. An OpenAI-format model "
        "gets `enabled` as `reasoning_effort` (a budget under 4,096 tokens is low, under "
        "16,384 medium, else high) and `disabled` as nothing; other kinds are a 400 there.",
    },
    "AnthropicToolUseBlock": obj(
        {
            "type": {"const": "tool_use"},
            "id": STRING,
            "name": TOOL_NAME,
            "input": {"type": "object"},
        },
        ("type", "id", "name", "input"),
    ),
    "AnthropicToolResultBlock": obj(
        {
            "type": {"const": "tool_result"},
            "tool_use_id": {"type": "string", "minLength": 1},
            "content": {"anyOf": [STRING, {"type": "array", "items": ref("AnthropicTextBlock")}]},
            "is_error": {"type": "boolean"},
        },
        ("type", "tool_use_id"),
    ),
    "AnthropicUserMessage": obj(
        {
            "role": {"const": "user"},
            "content": {
                "anyOf": [
                    STRING,
                    {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "anyOf": [
                                ref("AnthropicTextBlock"),
                                ref("AnthropicImageBlock"),
                                ref("AnthropicToolResultBlock"),
                            ]
                        },
                    },
                ]
            },
        },
        ("role", "content"),
    ),
    "AnthropicAssistantMessage": obj(
        {
            "role": {"const": "assistant"},
            "content": {
                "anyOf": [
                    STRING,
                    {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "anyOf": [
                                ref("AnthropicTextBlock"),
                                ref("AnthropicToolUseBlock"),
                                ref("AnthropicThinkingBlock"),
                                ref("AnthropicRedactedThinkingBlock"),
                            ]
                        },
                    },
                ]
            },
        },
        ("role", "content"),
    ),
    "AnthropicTool": obj(
        {
            "name": TOOL_NAME,
            "description": STRING,
            "input_schema": {"type": "object"},
            "type": {"const": "custom"},
        },
        ("name", "input_schema"),
    ),
    "AnthropicToolChoice": {
        "anyOf": [
            obj(
                {
                    "type": {"enum": ["auto", "any", "none"]},
                    "disable_parallel_tool_use": {"type": "boolean"},
                },
                ("type",),
            ),
            obj(
                {
                    "type": {"const": "tool"},
                    "name": TOOL_NAME,
                    "disable_parallel_tool_use": {"type": "boolean"},
                },
                ("type", "name"),
            ),
        ]
    },
    "MessagesRequest": obj(
        {
            "model": {
                "type": "string",
                "minLength": 1,
                "description": "A route, an alias of a route, or a model of the policy.",
            },
            "max_tokens": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
            "messages": {
                "type": "array",
                "minItems": 1,
                "items": {"anyOf": [ref("AnthropicUserMessage"), ref("AnthropicAssistantMessage")]},
            },
            "system": {"anyOf": [STRING, {"type": "array", "items": ref("AnthropicTextBlock")}]},
            "stop_sequences": {"type": "array", "items": STRING},
            "stream": {"type": "boolean"},
            "temperature": {"type": "number", "minimum": 0, "maximum": 1},
            "top_p": {"type": "number", "minimum": 0, "maximum": 1},
            "top_k": {
                "type": "integer",
                "minimum": 0,
                "description": "Anthropic-format models only (a 400 for OpenAI-format ones).",
            },
            "thinking": ref("AnthropicThinking"),
            "service_tier": {
                "enum": ["auto", "standard_only"],
                "description": "OpenAI-format models get `auto` or `default`.",
            },
            "metadata": {
                "type": "object",
                "properties": {"user_id": NULLABLE_STRING, **ROUTING_METADATA},
                "description": "Also read for routing, as on /v1/chat/completions.",
            },
            "tools": {"type": "array", "items": ref("AnthropicTool")},
            "tool_choice": ref("AnthropicToolChoice"),
        },
        ("model", "max_tokens", "messages"),
        description="An Anthropic Messages request; it is routed like a chat completion. "
        "Fields not described here pass unchanged to Anthropic-format models; an "
        "OpenAI-format model answers 400 to them.",
    ),
    "MessageCountTokensRequest": obj(
        {
            "model": {
                "type": "string",
                "minLength": 1,
                "description": "A route, an alias of a route, or a model of the policy.",
            },
            "messages": {
                "type": "array",
                "minItems": 1,
                "items": {"anyOf": [ref("AnthropicUserMessage"), ref("AnthropicAssistantMessage")]},
            },
            "system": {"anyOf": [STRING, {"type": "array", "items": ref("AnthropicTextBlock")}]},
            "tools": {"type": "array", "items": ref("AnthropicTool")},
            "tool_choice": ref("AnthropicToolChoice"),
            "thinking": ref("AnthropicThinking"),
        },
        ("model", "messages"),
        description="What a Messages request would send, without max_tokens.",
    ),
    "AnthropicMessage": obj(
        {
            "id": STRING,
            "type": {"const": "message"},
            "role": {"const": "assistant"},
            "model": STRING,
            "content": {
                "type": "array",
                "items": {
                    "anyOf": [
                        obj({"type": {"const": "text"}, "text": STRING}, ("type", "text")),
                        ref("AnthropicThinkingBlock"),
                        ref("AnthropicRedactedThinkingBlock"),
                        obj(
                            {
                                "type": {"const": "tool_use"},
                                "id": STRING,
                                "name": STRING,
                                "input": {"type": "object"},
                            },
                            ("type", "id", "name", "input"),
                        ),
                    ]
                },
            },
            "stop_reason": NULLABLE_STRING,
            "stop_sequence": NULLABLE_STRING,
            "usage": obj(
                {"input_tokens": COUNT, "output_tokens": COUNT},
                ("input_tokens", "output_tokens"),
            ),
        },
        ("id", "type", "role", "model", "content", "stop_reason", "usage"),
    ),
    "AnthropicStreamEvent": obj(
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
                "contentSchema": obj({"type": STRING}, ("type",)),
            },
        },
        ("event", "data"),
        description="One server-sent event of Anthropic's stream; `data.type` repeats the "
        "event name. A failure after the first byte ends the stream with an `error` event.",
    ),
    "AnthropicError": obj(
        {
            "type": {"const": "error"},
            "error": obj(
                {"type": {"enum": ANTHROPIC_ERROR_TYPES}, "message": STRING},
                ("type", "message"),
            ),
        },
        ("type", "error"),
    ),
}
