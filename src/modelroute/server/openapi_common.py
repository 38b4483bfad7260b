"""Building blocks of the OpenAPI document: schema helpers shared by both front doors."""

from __future__ import annotations

from typing import Any

JSON = "application/json"
SSE = "text/event-stream"

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: Schema, required: tuple[str, ...] = (), **extra: Any) -> Schema:
    schema: Schema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    return schema


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
INT = {"type": "integer"}
COUNT = {"type": "integer", "minimum": 0}
TOOL_NAME = {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"}
DECIMAL = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}
# Metadata fields routing reads (strings, as OpenAI's metadata values are).
_QUALITY = {"type": "string", "pattern": r"^(0(\.[0-9]+)?|1(\.0+)?)$"}
# Each limit under its header's name or its short name.
ROUTING_METADATA: Schema = {
    "task": {"type": "string", "maxLength": 512},
    "max_cost_usd": DECIMAL,
    "max_latency_ms": DECIMAL,
    "min_quality": _QUALITY,
    "x-modelroute-max-cost-usd": DECIMAL,
    "x-modelroute-max-latency-ms": DECIMAL,
    "x-modelroute-min-quality": _QUALITY,
}
