"""OpenAPI paths and schemas of the model endpoints: ``GET /v1/models`` and
``GET /v1/models/{model_id}``, in OpenAI's shape or, for callers that send Anthropic's
headers, in Anthropic's."""

from __future__ import annotations

from modelroute.server.openapi_common import INT, JSON, NULLABLE_STRING, STRING, Schema, obj, ref

_OPENAI_MODEL = obj(
    {
        "id": STRING,
        "object": {"const": "model"},
        "created": INT,
        "owned_by": STRING,
        "route": STRING,
        "model_id": STRING,
    },
    ("id", "object", "created", "owned_by"),
    description="A route or alias (`route` names the route), or a model (`model_id` is the "
    "provider's id for it).",
)

_ANTHROPIC_MODEL = obj(
    {
        "type": {"const": "model"},
        "id": STRING,
        "display_name": STRING,
        "created_at": {"type": "string", "format": "date-time"},
    },
    ("type", "id", "display_name", "created_at"),
)

MODEL_SCHEMAS: dict[str, Schema] = {
    "Model": _OPENAI_MODEL,
    "ModelList": obj(
        {"object": {"const": "list"}, "data": {"type": "array", "items": ref("Model")}},
        ("object", "data"),
    ),
    "AnthropicModelInfo": _ANTHROPIC_MODEL,
    "AnthropicModelList": obj(
        {
            "data": {"type": "array", "items": ref("AnthropicModelInfo")},
            "has_more": {"type": "boolean"},
            "first_id": NULLABLE_STRING,
            "last_id": NULLABLE_STRING,
        },
        ("data", "has_more", "first_id", "last_id"),
    ),
}

_SHAPE = (
    "Anthropic's shape when the request carries `anthropic-version` or `x-api-key` (as the "
    "anthropic SDK's do), OpenAI's otherwise."
)
_ANTHROPIC_VERSION: Schema = {
    "name": "anthropic-version",
    "in": "header",
    "required": False,
    "description": _SHAPE,
    "schema": STRING,
}
_PAGING: list[Schema] = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "Page size, Anthropic's shape only (default 20).",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
    },
    {
        "name": "after_id",
        "in": "query",
        "required": False,
        "description": "The page after this id, Anthropic's shape only.",
        "schema": STRING,
    },
    {
        "name": "before_id",
        "in": "query",
        "required": False,
        "description": "The page before this id, Anthropic's shape only.",
        "schema": STRING,
    },
]


def _either(openai: str, anthropic: str) -> Schema:
    return {JSON: {"schema": {"anyOf": [ref(openai), ref(anthropic)]}}}


MODEL_PATHS: dict[str, Schema] = {
    "/v1/models": {
        "get": {
            "operationId": "listModels",
            "summary": "The routes, aliases and models of the policy: every valid `model`.",
            "parameters": [_ANTHROPIC_VERSION, *_PAGING],
            "responses": {
                "200": {
                    "description": "A model list. " + _SHAPE,
                    "content": _either("ModelList", "AnthropicModelList"),
                },
                "400": {
                    "description": "A paging parameter is invalid (Anthropic's shape only).",
                    "content": {JSON: {"schema": ref("AnthropicError")}},
                },
            },
        }
    },
    "/v1/models/{model_id}": {
        "get": {
            "operationId": "retrieveModel",
            "summary": "One route, alias or model of the policy.",
            "parameters": [
                {"name": "model_id", "in": "path", "required": True, "schema": STRING},
                _ANTHROPIC_VERSION,
            ],
            "responses": {
                "200": {
                    "description": "The model. " + _SHAPE,
                    "content": _either("Model", "AnthropicModelInfo"),
                },
                "404": {
                    "description": "No route, alias or model has this name.",
                    "content": _either("OpenAIError", "AnthropicError"),
                },
            },
        }
    },
}
