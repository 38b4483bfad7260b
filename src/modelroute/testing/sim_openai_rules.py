"""Rules of OpenAI's Chat Completions API that the simulator enforces on a request body.

Each refusal is the real API's 400 (``invalid_request_error`` with its ``param``), so a client
or gateway that sends what OpenAI refuses fails against the simulator too, rather than only
in production. What is accepted comes back as ``OpenAIOptions`` for the reply to honour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from modelroute.testing.sim_wire import BadRequest, optional_int

# OpenAI's limits on ``metadata``: at most 16 pairs of strings, keys up to 64 characters,
# values up to 512.
_METADATA_MAX_KEYS = 16
_METADATA_MAX_KEY = 64
_METADATA_MAX_VALUE = 512
_N_MAX = 128
_SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOOL_CHOICES = ("none", "auto", "required")


@dataclass(frozen=True, slots=True)
class OpenAIOptions:
    """What a valid request asks of the answer beyond the text itself."""

    n: int = 1
    json_mode: str | None = None  # "object" | "schema" | None (plain text)
    json_schema: Any = None  # the schema of a json_schema response_format, if given
    tools_allowed: bool = True  # False for tool_choice "none"


def check_request(body: dict[str, Any], stream: bool, messages_text: str) -> OpenAIOptions:
    """Refuse what OpenAI refuses (``BadRequest``); else the options the reply honours."""
    _check_stream_options(body, stream)
    _check_metadata(body)
    json_mode, schema = _response_format(body.get("response_format"), messages_text)
    n = optional_int(body, "n", 1) or 1
    if n > _N_MAX:
        raise BadRequest(
            f"Invalid 'n': integer above maximum value. Expected a value <= {_N_MAX}, "
            f"but got {n} instead.",
            "n",
        )
    return OpenAIOptions(n, json_mode, schema, _tools_allowed(body))


def _check_stream_options(body: dict[str, Any], stream: bool) -> None:
    options = body.get("stream_options")
    if options is None:
        return
    if not stream:
        raise BadRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    if not isinstance(options, dict):
        raise BadRequest("Invalid type for 'stream_options': expected an object.", "stream_options")


def _check_metadata(body: dict[str, Any]) -> None:
    metadata = body.get("metadata")
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise BadRequest("Invalid type for 'metadata': expected an object.", "metadata")
    if len(metadata) > _METADATA_MAX_KEYS:
        raise BadRequest(
            "Invalid 'metadata': too many properties. Expected an object with at most "
            f"{_METADATA_MAX_KEYS} properties, but got an object with {len(metadata)} "
            "properties instead.",
            "metadata",
        )
    for key, value in metadata.items():
        if len(key) > _METADATA_MAX_KEY:
            raise BadRequest(
                f"Invalid 'metadata': key {key[:20]!r}... is longer than "
                f"{_METADATA_MAX_KEY} characters.",
                "metadata",
            )
        if not isinstance(value, str):
            raise BadRequest(
                f"Invalid type for 'metadata.{key}': expected a string, but got "
                f"{_json_type(value)} instead.",
                f"metadata.{key}",
            )
        if len(value) > _METADATA_MAX_VALUE:
            raise BadRequest(
                f"Invalid 'metadata.{key}': string too long. Expected a string with maximum "
                f"length {_METADATA_MAX_VALUE}, but got a string with length {len(value)} "
                "instead.",
                f"metadata.{key}",
            )
    # Checked last, as OpenAI does: a well-formed metadata object still needs stored output.
    if body.get("store") is not True:
        raise BadRequest(
            "The 'metadata' parameter is only allowed when 'store' is enabled.", "metadata"
        )


def _response_format(value: object, messages_text: str) -> tuple[str | None, Any]:
    if value is None:
        return None, None
    kind = value.get("type") if isinstance(value, dict) else None
    if not isinstance(value, dict) or kind not in ("text", "json_object", "json_schema"):
        raise BadRequest(
            f"Invalid value: {kind!r}. Supported values are: 'json_object', 'json_schema', "
            "and 'text'.",
            "response_format.type",
        )
    if kind == "text":
        return None, None
    if kind == "json_object":
        if "json" not in messages_text.lower():
            raise BadRequest(
                "'messages' must contain the word 'json' in some form, to use "
                "'response_format' of type 'json_object'.",
                "messages",
            )
        return "object", None
    spec = value.get("json_schema")
    if not isinstance(spec, dict):
        raise BadRequest(
            "Missing required parameter: 'response_format.json_schema'.",
            "response_format.json_schema",
        )
    name = spec.get("name")
    if not isinstance(name, str) or not _SCHEMA_NAME.match(name):
        raise BadRequest(
            "Invalid 'response_format.json_schema.name': expected 1 to 64 letters, digits, "
            "underscores or dashes.",
            "response_format.json_schema.name",
        )
    schema = spec.get("schema")
    if schema is not None and not isinstance(schema, dict):
        raise BadRequest(
            "Invalid type for 'response_format.json_schema.schema': expected an object.",
            "response_format.json_schema.schema",
        )
    return "schema", schema


def _tools_allowed(body: dict[str, Any]) -> bool:
    choice = body.get("tool_choice")
    if choice is None:
        return True
    if not body.get("tools"):
        raise BadRequest(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
            "are specified.",
            "tool_choice",
        )
    if isinstance(choice, str):
        if choice not in _TOOL_CHOICES:
            raise BadRequest(
                f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'.",
                "tool_choice",
            )
        return choice != "none"
    if not isinstance(choice, dict):
        raise BadRequest("Invalid type for 'tool_choice': expected an object.", "tool_choice")
    return True


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else "a string"
