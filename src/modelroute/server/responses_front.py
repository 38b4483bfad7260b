"""Requests of the Responses API front door (``POST /v1/responses``) as canonical bodies. Pure.

``responses_to_chat`` translates a Responses request into the canonical body (Chat
Completions): ``instructions`` become a system message, input items become messages
(``function_call`` items assistant tool calls, ``function_call_output`` items tool
messages, ``developer`` a system message), function tools and ``tool_choice`` their Chat
Completions forms, ``text.format`` ``response_format``, ``text.verbosity`` ``verbosity``,
``reasoning.effort`` ``reasoning_effort``, ``max_output_tokens`` ``max_completion_tokens``,
``top_logprobs`` ``logprobs``. The request itself rides along under ``RESPONSES_REQUEST``,
for a model that serves the Responses API (capability ``responses``).

What the translation cannot carry (built-in tools such as ``web_search``, ``conversation``,
``background``, stored prompts, reasoning items, file inputs, parameters the bridge does not
know) is listed, with where it was found,
under ``RESPONSES_NATIVE_ONLY``: the planner then keeps only models with the ``responses``
capability, and when there are none the door answers 400, naming each. Nothing is dropped in
silence. A malformed request is a ``BridgeError`` (400 with its ``param``), as is a value the
Responses API refuses in a parameter a response repeats (``responses_checks``).
``previous_response_id`` reaches it only from a library caller: the door puts the stored
conversation it names in the input first (``responses_stored.with_previous``).
"""

from __future__ import annotations

from typing import Any

import orjson

from modelroute.request_fields import RESPONSES_NATIVE_ONLY, RESPONSES_REQUEST, whole_count
from modelroute.server.responses_checks import BridgeError, check_echoed, check_function_tool

__all__ = ["BridgeError", "responses_to_chat"]


# Parameters copied unchanged (Chat Completions has the same field, with the same meaning).
_SAME = ("temperature", "top_p", "parallel_tool_calls", "user", "safety_identifier",
         "prompt_cache_key", "service_tier", "metadata")  # fmt: skip
# Parameters with no bridged meaning to lose: ``store`` (the door stores responses itself),
# ``stream_options`` (obfuscation padding only), ``truncation: disabled`` (the default), and
# those translated below.
_HANDLED = frozenset(
    {*_SAME, "model", "input", "instructions", "stream", "store", "stream_options",
     "max_output_tokens", "tools", "tool_choice", "text", "reasoning", "top_logprobs",
     "include"}
)  # fmt: skip
_TRUTHY_NATIVE = {
    "previous_response_id": "refers to a response stored by the Responses API",
    "conversation": "refers to a conversation stored by the Responses API",
    "background": "background mode runs only where the Responses API is served",
    "prompt": "stored prompt templates live in the Responses API",
    "max_tool_calls": "limits built-in tool calls, which run only in the Responses API",
    "context_management": "context management runs only in the Responses API",
    "prompt_cache_retention": "prompt cache retention is a Responses API setting",
}
_LOGPROBS_INCLUDE = "message.output_text.logprobs"
_TOOL_CHOICES = ("auto", "none", "required")


def responses_to_chat(body: object) -> dict[str, Any]:
    """The canonical body for a Responses request; ``BridgeError`` says what is malformed."""
    if not isinstance(body, dict):
        raise BridgeError("the body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BridgeError("Missing required parameter: 'model'.", "model")
    check_echoed(body)
    native: list[str] = []
    request = dict(body)
    out: dict[str, Any] = {"model": model, "messages": _messages(body, native)}
    limit = body.get("max_output_tokens")
    if limit is not None:
        count = whole_count(limit)
        if count is None:
            raise BridgeError(
                "Invalid 'max_output_tokens': expected a positive integer.", "max_output_tokens"
            )
        out["max_completion_tokens"] = request["max_output_tokens"] = count
    _copy_same(out, body)
    _tools(out, body, native)
    _text(out, body.get("text"), native)
    _reasoning(out, body.get("reasoning"), native)
    _logprobs(out, body, native)
    if body.get("stream") is not None:
        out["stream"] = bool(body["stream"])
    for key, why in _TRUTHY_NATIVE.items():
        if body.get(key):
            native.append(f"{key}: {why}")
    if body.get("truncation") not in (None, "disabled"):
        native.append("truncation: truncating the input runs only in the Responses API")
    for key in body:
        if key not in _HANDLED and key not in _TRUTHY_NATIVE and key != "truncation":
            native.append(f"{key}: a parameter the Chat Completions bridge does not know")
    request.pop("stream", None)  # the provider sets it for each attempt
    out[RESPONSES_REQUEST] = request
    if native:
        out[RESPONSES_NATIVE_ONLY] = native
    return out


def _copy_same(out: dict[str, Any], body: dict[str, Any]) -> None:
    for key in _SAME:  # their values are checked (``check_echoed``)
        value = body.get(key)
        if value is not None:
            out[key] = value


# -- input --------------------------------------------------------------------------------


def _messages(body: dict[str, Any], native: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise BridgeError("Invalid type for 'instructions': expected a string.", "instructions")
    if instructions:
        out.append({"role": "system", "content": instructions})
    items = body.get("input")
    if isinstance(items, str):
        return [*out, {"role": "user", "content": items}]
    if not isinstance(items, list):
        raise BridgeError(
            "Invalid type for 'input': expected one of a string or array of input items.", "input"
        )
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise BridgeError(f"Invalid type for '{where}': expected an object.", where)
        kind = item.get("type", "message")
        if kind == "message":
            out.append(_message(item, where, native))
        elif kind == "function_call":
            _function_call(out, item, where)
        elif kind == "function_call_output":
            out.append(_function_output(item, where, native))
        else:
            native.append(f"{where}: a {kind!r} item has no Chat Completions equivalent")
    if not out:
        raise BridgeError("Invalid 'input': expected at least one input item.", "input")
    return out


def _message(item: dict[str, Any], where: str, native: list[str]) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise BridgeError(
            f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', 'system', "
            "and 'developer'.",
            f"{where}.role",
        )
    content = item.get("content")
    if isinstance(content, str):
        text: str | list[dict[str, Any]] = content
    elif isinstance(content, list):
        text = _parts(content, f"{where}.content", role == "assistant", native)
    else:
        raise BridgeError(
            f"Invalid type for '{where}.content': expected one of a string or array of content "
            "parts.",
            f"{where}.content",
        )
    return {"role": "system" if role == "developer" else role, "content": text}


def _parts(
    content: list[Any], where: str, assistant: bool, native: list[str]
) -> str | list[dict[str, Any]]:
    """Content parts as Chat Completions parts; text alone as one string."""
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(part, dict) or not isinstance(kind, str):
            raise BridgeError(f"Invalid type for '{at}': expected a content part.", at)
        if kind in ("input_text", "output_text"):
            if not isinstance(part.get("text"), str):
                raise BridgeError(f"Missing required parameter: '{at}.text'.", f"{at}.text")
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "refusal" and assistant:
            parts.append({"type": "text", "text": str(part.get("refusal") or "")})
        elif kind == "input_image" and isinstance(part.get("image_url"), str) and not assistant:
            image: dict[str, Any] = {"url": part["image_url"]}
            if part.get("detail") in ("low", "high", "auto"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            native.append(f"{at}: a {kind!r} part has no Chat Completions equivalent here")
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _function_call(out: list[dict[str, Any]], item: dict[str, Any], where: str) -> None:
    for key in ("call_id", "name", "arguments"):
        if not isinstance(item.get(key), str):
            raise BridgeError(f"Missing required parameter: '{where}.{key}'.", f"{where}.{key}")
    call = {
        "id": item["call_id"],
        "type": "function",
        "function": {"name": item["name"], "arguments": item["arguments"]},
    }
    last = out[-1] if out else None
    if last is not None and last["role"] == "assistant":  # the same turn: one message
        last.setdefault("tool_calls", []).append(call)
        if last.get("content") == "":
            last["content"] = None
        return
    out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _function_output(item: dict[str, Any], where: str, native: list[str]) -> dict[str, Any]:
    call_id = item.get("call_id")
    if not isinstance(call_id, str):
        raise BridgeError(f"Missing required parameter: '{where}.call_id'.", f"{where}.call_id")
    output = item.get("output")
    if isinstance(output, list):
        result = _parts(output, f"{where}.output", False, native)
        text = result if isinstance(result, str) else orjson.dumps(result).decode()
    elif isinstance(output, str):
        text = output
    else:
        raise BridgeError(f"Missing required parameter: '{where}.output'.", f"{where}.output")
    return {"role": "tool", "tool_call_id": call_id, "content": text}


# -- tools, format, reasoning ----------------------------------------------------------------


def _tools(out: dict[str, Any], body: dict[str, Any], native: list[str]) -> None:
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise BridgeError("Invalid type for 'tools': expected an array.", "tools")
    functions = []
    for i, tool in enumerate(tools or ()):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or not isinstance(kind, str):
            raise BridgeError(f"Invalid type for 'tools[{i}]': expected a tool.", f"tools[{i}]")
        if kind != "function":
            native.append(f"tools[{i}]: the built-in tool {kind!r} runs only in the Responses API")
            continue
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise BridgeError(f"Missing required parameter: 'tools[{i}].name'.", f"tools[{i}].name")
        check_function_tool(tool, f"tools[{i}]")
        function = {"name": tool["name"]}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                function[key] = tool[key]
        functions.append({"type": "function", "function": function})
    if functions:
        out["tools"] = functions
    choice = body.get("tool_choice")
    if choice is None:
        return
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        out["tool_choice"] = choice
    elif isinstance(choice, dict) and choice.get("type") == "function":
        if not isinstance(choice.get("name"), str):
            raise BridgeError("Missing required parameter: 'tool_choice.name'.", "tool_choice.name")
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    elif isinstance(choice, dict) and isinstance(choice.get("type"), str):
        native.append(f"tool_choice: {choice['type']!r} has no Chat Completions equivalent")
    else:
        raise BridgeError(
            "Invalid value for 'tool_choice': expected 'auto', 'none', 'required' or an object.",
            "tool_choice",
        )
    if "tool_choice" in out and "tools" not in out:
        del out["tool_choice"]  # Chat Completions refuses a choice without tools


def _text(out: dict[str, Any], text: object, native: list[str]) -> None:
    if text is None:
        return
    if not isinstance(text, dict):
        raise BridgeError("Invalid type for 'text': expected an object.", "text")
    if text.get("verbosity") is not None:
        out["verbosity"] = text["verbosity"]
    fmt = text.get("format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt is None or kind == "text":
        return
    if kind == "json_object":
        out["response_format"] = {"type": "json_object"}
    elif kind == "json_schema" and isinstance(fmt, dict):
        if not isinstance(fmt.get("name"), str) or not isinstance(fmt.get("schema"), dict):
            raise BridgeError(
                "Missing required parameter: 'text.format.name' and 'text.format.schema'.",
                "text.format",
            )
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        out["response_format"] = {"type": "json_schema", "json_schema": schema}
    else:
        native.append(f"text.format: {kind!r} has no Chat Completions equivalent")


def _reasoning(out: dict[str, Any], reasoning: object, native: list[str]) -> None:
    if reasoning is None:
        return
    if not isinstance(reasoning, dict):
        raise BridgeError("Invalid type for 'reasoning': expected an object.", "reasoning")
    if reasoning.get("effort") is not None:
        out["reasoning_effort"] = reasoning["effort"]
    for key in ("summary", "generate_summary"):
        if reasoning.get(key) is not None:
            native.append(f"reasoning.{key}: reasoning summaries come only from the Responses API")


def _logprobs(out: dict[str, Any], body: dict[str, Any], native: list[str]) -> None:
    include = body.get("include") or []
    if not isinstance(include, list):
        raise BridgeError("Invalid type for 'include': expected an array.", "include")
    for i, value in enumerate(include):
        if value != _LOGPROBS_INCLUDE:
            native.append(f"include[{i}]: {value!r} comes only from the Responses API")
    top = body.get("top_logprobs")
    if _LOGPROBS_INCLUDE in include or top:
        out["logprobs"] = True
    if top:
        out["top_logprobs"] = top
