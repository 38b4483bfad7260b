"""Rules of OpenAI's Responses API (``POST /v1/responses``) that the simulator enforces.

Each refusal is the real API's 400 (``invalid_request_error`` with its ``param``): unknown
parameters, malformed input items, a ``function_call_output`` with no call, an unknown
``previous_response_id`` (``previous_response_not_found``: one the simulator does not keep,
and every one unless it keeps responses), output limits under 16 tokens, a
``json_object`` format without the word "json" in the input, and so on. What is accepted
comes back as ``ResponsesInput`` for the reply to honour.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelroute.testing.sim_wire import BadRequest, text_of

# Every top-level parameter of ``responses.create`` (openai.types.responses
# ResponseCreateParams) plus ``stream``: anything else is "Unknown parameter".
_PARAMETERS = frozenset(
    {
        "model", "input", "instructions", "max_output_tokens", "max_tool_calls", "metadata",
        "parallel_tool_calls", "previous_response_id", "prompt", "prompt_cache_key",
        "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier", "store",
        "stream", "stream_options", "temperature", "text", "tool_choice", "tools",
        "top_logprobs", "top_p", "truncation", "user", "include", "background",
        "conversation", "context_management",
    }
)  # fmt: skip
_ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning", "web_search_call")
_ROLES = ("user", "assistant", "system", "developer")
_INPUT_PARTS = ("input_text", "input_image", "input_file")
_OUTPUT_PARTS = ("output_text", "refusal")
_TOOL_TYPES = (
    "function", "file_search", "computer_use_preview", "web_search_preview", "web_search",
    "mcp", "code_interpreter", "image_generation", "local_shell", "custom",
)  # fmt: skip
# The built-in tools the simulator serves (it pretends to search; no other runs here).
SEARCH_TOOLS = ("web_search", "web_search_preview")
_MIN_OUTPUT_TOKENS = 16
_SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(slots=True)
class ResponsesInput:
    """What a valid request asks of the answer."""

    texts: list[str] = field(default_factory=list)  # every input text (the token estimate)
    match_text: str = ""  # the last user text or function output: what the answer matches
    after_tool: bool = False  # the input ends with a function_call_output
    tool_names: frozenset[str] = frozenset()
    search: bool = False  # a web_search tool is offered
    json_mode: str | None = None
    json_schema: Any = None
    tools_allowed: bool = True
    previous_tokens: int = 0  # the conversation of the previous response, in tokens


def check_request(
    body: dict[str, Any], stream: bool, kept: Mapping[str, int] | None = None
) -> ResponsesInput:
    """Refuse what the Responses API refuses (``BadRequest``); else what the reply honours.
    ``kept``: the responses the simulator keeps, by id (their conversations in tokens);
    None: it keeps none."""
    unknown = next((key for key in body if key not in _PARAMETERS), None)
    if unknown is not None:
        raise BadRequest(f"Unknown parameter: '{unknown}'.", unknown)
    if body.get("stream_options") is not None and not stream:
        raise BadRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    previous = body.get("previous_response_id")
    known = kept is not None and isinstance(previous, str) and previous in kept
    if previous is not None and not known:
        raise BadRequest(
            f"Previous response with id '{previous}' not found.",
            "previous_response_id",
            "previous_response_not_found",
        )
    if body.get("background"):
        raise BadRequest("Background mode is not served by the simulator.", "background")
    _check_number(body, "temperature", 2.0)
    _check_number(body, "top_p", 1.0)
    _check_output_limit(body.get("max_output_tokens"))
    asked = ResponsesInput()
    if known:
        assert kept is not None and isinstance(previous, str)
        asked.previous_tokens = kept[previous]
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise BadRequest("Invalid type for 'instructions': expected a string.", "instructions")
    if instructions:
        asked.texts.append(instructions)
    _read_input(body.get("input"), asked)
    _read_tools(body.get("tools"), asked)
    asked.tools_allowed = _tools_allowed(body.get("tool_choice"), bool(body.get("tools")))
    _read_format(body.get("text"), asked)
    return asked


def _check_number(body: dict[str, Any], key: str, maximum: float) -> None:
    value = body.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"Invalid type for '{key}': expected a decimal.", key)
    if not 0 <= value <= maximum:
        raise BadRequest(
            f"Invalid '{key}': decimal out of range. Expected a value between 0 and "
            f"{maximum:g}, but got {value} instead.",
            key,
        )


def _check_output_limit(value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(
            "Invalid type for 'max_output_tokens': expected an integer.", "max_output_tokens"
        )
    if value < _MIN_OUTPUT_TOKENS:
        raise BadRequest(
            "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
            f"{_MIN_OUTPUT_TOKENS}, but got {value} instead.",
            "max_output_tokens",
        )


def _read_input(value: object, asked: ResponsesInput) -> None:
    if isinstance(value, str):
        asked.texts.append(value)
        asked.match_text = value
        return
    if not isinstance(value, list):
        raise BadRequest(
            "Invalid type for 'input': expected one of a string or array of input items.",
            "input",
        )
    calls: set[str] = set()
    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"Invalid type for '{where}': expected an object.", where)
        kind = item.get("type", "message")
        if kind not in _ITEM_TYPES:
            supported = ", ".join(f"'{t}'" for t in _ITEM_TYPES)
            raise BadRequest(
                f"Invalid value: '{kind}'. Supported values are: {supported}.", f"{where}.type"
            )
        if kind == "message":
            _read_message(item, where, asked)
        elif kind == "function_call":
            _require_strings(item, where, ("call_id", "name", "arguments"))
            calls.add(item["call_id"])
        elif kind == "function_call_output":
            _require_strings(item, where, ("call_id",))
            if item["call_id"] not in calls:
                raise BadRequest(
                    f"No tool call found for function call output with call_id {item['call_id']}.",
                    "input",
                )
            output = text_of(item.get("output"))
            asked.texts.append(output)
            asked.match_text, asked.after_tool = output, True


def _read_message(item: dict[str, Any], where: str, asked: ResponsesInput) -> None:
    role = item.get("role")
    if role not in _ROLES:
        supported = ", ".join(f"'{r}'" for r in _ROLES)
        raise BadRequest(
            f"Invalid value: '{role}'. Supported values are: {supported}.", f"{where}.role"
        )
    content = item.get("content")
    if isinstance(content, list):
        allowed = _OUTPUT_PARTS if role == "assistant" else _INPUT_PARTS
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in allowed:
                supported = " and ".join(f"'{t}'" for t in allowed)
                raise BadRequest(
                    f"Invalid value: '{kind}'. Supported values are: {supported}.",
                    f"{where}.content[{j}]",
                )
    elif not isinstance(content, str):
        raise BadRequest(
            f"Invalid type for '{where}.content': expected one of a string or array of "
            "content parts.",
            f"{where}.content",
        )
    text = text_of(content)
    asked.texts.append(text)
    if role == "user":
        asked.match_text, asked.after_tool = text, False


def _require_strings(item: dict[str, Any], where: str, keys: tuple[str, ...]) -> None:
    for key in keys:
        if not isinstance(item.get(key), str):
            raise BadRequest(f"Missing required parameter: '{where}.{key}'.", f"{where}.{key}")


def _read_tools(tools: object, asked: ResponsesInput) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise BadRequest("Invalid type for 'tools': expected an array.", "tools")
    names = set()
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind not in _TOOL_TYPES or not isinstance(tool, dict):
            supported = ", ".join(f"'{t}'" for t in _TOOL_TYPES)
            raise BadRequest(
                f"Invalid value: '{kind}'. Supported values are: {supported}.", f"tools[{i}].type"
            )
        if kind == "function":
            if not isinstance(tool.get("name"), str):
                raise BadRequest(
                    f"Missing required parameter: 'tools[{i}].name'.", f"tools[{i}].name"
                )
            names.add(tool["name"])
        elif kind in SEARCH_TOOLS:
            asked.search = True
        else:
            raise BadRequest(
                f"The simulator does not serve tools of type '{kind}'.", f"tools[{i}].type"
            )
    asked.tool_names = frozenset(names)


def _tools_allowed(choice: object, has_tools: bool) -> bool:
    if choice is None:
        return True
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise BadRequest(
                f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'.",
                "tool_choice",
            )
        return choice != "none"
    if not isinstance(choice, dict) or not isinstance(choice.get("type"), str):
        raise BadRequest("Invalid type for 'tool_choice': expected an object.", "tool_choice")
    if not has_tools:
        raise BadRequest("Tool choice is only allowed when 'tools' are specified.", "tool_choice")
    return True


def _read_format(text: object, asked: ResponsesInput) -> None:
    if text is None:
        return
    fmt = text.get("format") if isinstance(text, dict) else None
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("text", "json_object", "json_schema") or not isinstance(fmt, dict):
        raise BadRequest(
            f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', and "
            "'json_schema'.",
            "text.format.type",
        )
    if kind == "json_object":
        if "json" not in "\n".join(asked.texts).lower():
            raise BadRequest(
                "Response input messages must contain the word 'json' in some form to use "
                "'text.format' of type 'json_object'.",
                "input",
            )
        asked.json_mode = "object"
    elif kind == "json_schema":
        if not isinstance(fmt.get("name"), str) or not _SCHEMA_NAME.match(fmt["name"]):
            raise BadRequest("Missing required parameter: 'text.format.name'.", "text.format.name")
        if not isinstance(fmt.get("schema"), dict):
            raise BadRequest(
                "Missing required parameter: 'text.format.schema'.", "text.format.schema"
            )
        asked.json_mode, asked.json_schema = "schema", fmt["schema"]
