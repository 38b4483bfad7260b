"""OpenAPI schemas of the OpenAI Chat Completions front door."""

from __future__ import annotations

from modelroute.request_fields import MAX_COUNT
from modelroute.server.openapi_common import (
    COUNT,
    INT,
    JSON,
    NULLABLE_STRING,
    ROUTING_METADATA,
    STRING,
    TOOL_NAME,
    Schema,
    nullable,
    obj,
    ref,
)

# JSON Schema's "integer" includes 292.0, which the gateway takes as 292 (and sends on so).
OUTPUT_LIMIT: Schema = {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_COUNT}

# -- OpenAI Chat Completions -----------------------------------------------------------------

OPENAI_SCHEMAS: dict[str, Schema] = {
    "TextPart": obj(
        {"type": {"const": "text"}, "text": STRING},
        ("type", "text"),
    ),
    "ImagePart": obj(
        {
            "type": {"const": "image_url"},
            "image_url": obj(
                {"url": STRING, "detail": {"enum": ["auto", "low", "high"]}}, ("url",)
            ),
        },
        ("type", "image_url"),
    ),
    "UserContent": {
        "anyOf": [
            STRING,
            {
                "type": "array",
                "minItems": 1,
                "items": {"anyOf": [ref("TextPart"), ref("ImagePart")]},
            },
        ]
    },
    "TextContent": {"anyOf": [STRING, {"type": "array", "minItems": 1, "items": ref("TextPart")}]},
    "SystemMessage": obj(
        {
            "role": {"enum": ["system", "developer"]},
            "content": ref("TextContent"),
            "name": STRING,
        },
        ("role", "content"),
    ),
    "UserMessage": obj(
        {"role": {"const": "user"}, "content": ref("UserContent"), "name": STRING},
        ("role", "content"),
    ),
    "ToolCall": obj(
        {
            "id": STRING,
            "type": {"const": "function"},
            "function": obj({"name": TOOL_NAME, "arguments": STRING}, ("name", "arguments")),
        },
        ("id", "type", "function"),
    ),
    "AssistantMessage": obj(
        {
            "role": {"const": "assistant"},
            "content": nullable(ref("TextContent")),
            "name": STRING,
            "refusal": NULLABLE_STRING,
            "tool_calls": {"type": "array", "items": ref("ToolCall")},
        },
        ("role",),
    ),
    "ToolMessage": obj(
        {"role": {"const": "tool"}, "content": ref("TextContent"), "tool_call_id": STRING},
        ("role", "content", "tool_call_id"),
    ),
    "Message": {
        "anyOf": [
            ref("SystemMessage"),
            ref("UserMessage"),
            ref("AssistantMessage"),
            ref("ToolMessage"),
        ]
    },
    "Tool": obj(
        {
            "type": {"const": "function"},
            "function": obj(
                {
                    "name": TOOL_NAME,
                    "description": STRING,
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
            obj(
                {"type": {"const": "function"}, "function": obj({"name": TOOL_NAME}, ("name",))},
                ("type", "function"),
            ),
        ]
    },
    "ResponseFormat": {
        "anyOf": [
            obj({"type": {"enum": ["text", "json_object"]}}, ("type",)),
            obj(
                {
                    "type": {"const": "json_schema"},
                    "json_schema": obj(
                        {
                            "name": TOOL_NAME,
                            "description": STRING,
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
    "ChatCompletionRequest": obj(
        {
            "model": {
                "type": "string",
                "minLength": 1,
                "description": "A route, an alias of a route, or a model of the policy. "
                "Without it the route is found by task, by the policy's match rules, or is "
                "its default route.",
            },
            "messages": {"type": "array", "minItems": 1, "items": ref("Message")},
            "stream": {"type": ["boolean", "null"]},
            "stream_options": nullable(obj({"include_usage": {"type": "boolean"}})),
            "max_tokens": OUTPUT_LIMIT,
            "max_completion_tokens": OUTPUT_LIMIT,
            "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
            "top_p": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "stop": {
                "anyOf": [
                    STRING,
                    {"type": "array", "items": STRING, "maxItems": 4},
                    {"type": "null"},
                ]
            },
            "tools": {"type": "array", "items": ref("Tool")},
            "tool_choice": ref("ToolChoice"),
            "response_format": ref("ResponseFormat"),
            "logprobs": {"type": ["boolean", "null"]},
            "top_logprobs": {"type": ["integer", "null"], "minimum": 0, "maximum": 20},
            "metadata": nullable(
                {
                    "type": "object",
                    "maxProperties": 16,
                    "properties": ROUTING_METADATA,
                    "additionalProperties": {"type": "string", "maxLength": 512},
                    "description": "`task` selects the route like x-modelroute-task; "
                    "`max_cost_usd`, `max_latency_ms` and `min_quality` (or the "
                    "x-modelroute-* headers' names) tighten its limits like those headers "
                    "(which win).",
                }
            ),
        },
        ("messages",),
        description="An OpenAI Chat Completions request. Fields not listed pass through to "
        "the provider untouched.",
    ),
    "ChatCompletion": obj(
        {
            "id": STRING,
            "object": {"const": "chat.completion"},
            "created": INT,
            "model": STRING,
            "system_fingerprint": NULLABLE_STRING,
            "choices": {
                "type": "array",
                "items": obj(
                    {
                        "index": INT,
                        "message": obj(
                            {
                                "role": {"const": "assistant"},
                                "content": NULLABLE_STRING,
                                "refusal": NULLABLE_STRING,
                                "tool_calls": {
                                    "type": "array",
                                    "items": obj(
                                        {
                                            "id": STRING,
                                            "type": STRING,
                                            "function": obj(
                                                {"name": STRING, "arguments": STRING},
                                                ("name", "arguments"),
                                            ),
                                        },
                                        ("id", "type", "function"),
                                    ),
                                },
                            },
                            ("role",),
                        ),
                        "finish_reason": NULLABLE_STRING,
                        "logprobs": {"type": ["object", "null"]},
                    },
                    ("index", "message", "finish_reason"),
                ),
            },
            "usage": obj(
                {
                    "prompt_tokens": COUNT,
                    "completion_tokens": COUNT,
                    "total_tokens": COUNT,
                },
                ("prompt_tokens", "completion_tokens", "total_tokens"),
            ),
        },
        ("id", "object", "created", "model", "choices"),
    ),
    "ChatCompletionChunk": obj(
        {
            "id": STRING,
            "object": {"const": "chat.completion.chunk"},
            "created": INT,
            "model": STRING,
            "choices": {
                "type": "array",
                "items": obj(
                    {
                        "index": INT,
                        "delta": {"type": "object"},
                        "finish_reason": NULLABLE_STRING,
                        "logprobs": {"type": ["object", "null"]},
                    },
                    ("index", "delta"),
                ),
            },
            "usage": {"type": ["object", "null"]},
        },
        ("id", "object", "created", "model", "choices"),
    ),
    "ChatCompletionStreamEvent": obj(
        {
            "event": STRING,
            "data": {
                "anyOf": [
                    {"const": "[DONE]"},
                    {
                        "type": "string",
                        "contentMediaType": JSON,
                        "contentSchema": {
                            "anyOf": [ref("ChatCompletionChunk"), ref("OpenAIError")]
                        },
                    },
                ]
            },
        },
        ("data",),
        description="One server-sent event: a chunk, the final `[DONE]`, or an error object "
        "when the stream fails after its first byte.",
    ),
    "OpenAIError": obj(
        {
            "error": obj(
                {
                    "message": STRING,
                    "type": STRING,
                    "param": NULLABLE_STRING,
                    "code": NULLABLE_STRING,
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
