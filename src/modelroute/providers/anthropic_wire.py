"""Anthropic Messages ⇄ canonical OpenAI Chat Completions: pure translation, no I/O, no clock.

``to_anthropic_request`` (here) turns the canonical body into a Messages request;
``from_anthropic_message`` and ``StreamTranslator`` (in ``anthropic_answer``, re-exported here
so this module is the one import for the whole wire format) turn answers back into OpenAI
shape. A bad canonical body raises ``ValueError`` (the provider makes it a 400 bad request).
The opposite direction, for clients that speak Anthropic to the gateway, is
``server.anthropic_front``.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelroute.providers.anthropic_answer import (
    StreamTranslator,
    anthropic_usage,
    finish_reason,
    from_anthropic_message,
)
from modelroute.request_fields import (
    ANTHROPIC_FIELDS,
    OUTPUT_LIMIT_KEYS,
    THINKING_BLOCKS,
    whole_count,
)

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "StreamTranslator",
    "anthropic_usage",
    "finish_reason",
    "from_anthropic_message",
    "to_anthropic_request",
]

# Anthropic requires max_tokens; OpenAI clients usually leave it out.
DEFAULT_MAX_TOKENS = 4096

_TOOL_CHOICE = {"auto": "auto", "required": "any", "none": "none"}
# What the request is built from here whatever ANTHROPIC_FIELDS says.
_BUILT_HERE = frozenset({"model", "messages", "stream"})
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


# -- requests --------------------------------------------------------------------------------


def to_anthropic_request(body: dict[str, Any], model_id: str) -> dict[str, Any]:
    """The canonical OpenAI body as an Anthropic Messages request; ``ValueError`` if invalid.

    Fields Anthropic does not accept (n, logprobs, response_format, seed, penalties,
    stream_options, our own metadata...) are dropped rather than passed through, because
    Anthropic rejects unknown fields with a 400. The Messages fields a client of the
    Anthropic door sent with no canonical counterpart (``ANTHROPIC_FIELDS``: thinking, top_k,
    service_tier, ...) go out as sent, and thinking blocks back at the head of their turn.
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages: a non-empty list is required")
    system, turns = _split_messages(messages)
    if not turns:
        raise ValueError("messages: at least one non-empty user or assistant message is required")
    out: dict[str, Any] = {"model": model_id, "max_tokens": _max_tokens(body), "messages": turns}
    if system:
        single = len(system) == 1 and "cache_control" not in system[0]
        out["system"] = system[0]["text"] if single else system
    _add_tools(out, body)
    _add_sampling(out, body)
    extra = body.get(ANTHROPIC_FIELDS)
    if isinstance(extra, dict):  # a Messages request's own fields, exactly as its client sent
        out.update((k, v) for k, v in extra.items() if k not in _BUILT_HERE)
    return out


def _split_messages(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, alternating user/assistant turns)."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise ValueError(f"{where}: must be an object")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), f"{where}.content"))
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), f"{where}.content")
        elif role == "assistant":
            blocks = _assistant_blocks(message, where)
        elif role == "tool":
            role, blocks = "user", [_tool_result(message, where)]
        else:
            raise ValueError(f"{where}.role: unsupported role {role!r}")
        if not blocks:
            continue  # Anthropic rejects empty content; an empty turn carries nothing anyway
        # Anthropic requires strict alternation: merge what OpenAI allows to repeat
        # (e.g. several tool results, or a tool result followed by a user note).
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, [_collapse(turn) for turn in turns]


def _collapse(turn: dict[str, Any]) -> dict[str, Any]:
    """A lone plain text block as a string: the common, most compact form."""
    blocks = turn["content"]
    if len(blocks) == 1 and blocks[0].keys() == {"type", "text"} and blocks[0]["type"] == "text":
        return {"role": turn["role"], "content": blocks[0]["text"]}
    return turn


def _text_blocks(content: object, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise ValueError(f"{where}: must be a string or a list of content parts")
    blocks = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in ("text", "refusal"):
            raise ValueError(f"{where}.{j}: only text parts are allowed here, got {kind!r}")
        block = _part_block(part, f"{where}.{j}")
        if block is not None:
            blocks.append(block)
    return blocks


def _user_blocks(content: object, where: str) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return _text_blocks(content, where)
    blocks = []
    for j, part in enumerate(content):
        block = _part_block(part, f"{where}.{j}")
        if block is not None:
            blocks.append(block)
    return blocks


def _part_block(part: object, where: str) -> dict[str, Any] | None:
    """One OpenAI content part as an Anthropic block; None for an empty text part."""
    if not isinstance(part, dict):
        raise ValueError(f"{where}: must be an object")
    kind = part.get("type")
    block: dict[str, Any]
    if kind in ("text", "refusal"):
        text = part.get(kind)
        if not isinstance(text, str):
            raise ValueError(f"{where}.{kind}: must be a string")
        if not text:
            return None  # Anthropic rejects empty text blocks
        block = {"type": "text", "text": text}
    elif kind == "image_url":
        block = _image_block(part.get("image_url"), where)
    else:
        raise ValueError(f"{where}.type: unsupported content part type {kind!r}")
    if "cache_control" in part:  # prompt caching hints from clients that know Anthropic
        block["cache_control"] = part["cache_control"]
    return block


def _image_block(spec: object, where: str) -> dict[str, Any]:
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str) or not url:
        raise ValueError(f"{where}.image_url.url: must be a non-empty string")
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        media_type, *params = header.split(";")
        if not comma or "base64" not in params or not media_type:
            raise ValueError(f"{where}.image_url.url: only base64 data: URLs are supported")
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise ValueError(f"{where}.image_url.url: must be a data: or http(s) URL")


def _assistant_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    thinking = message.get(THINKING_BLOCKS) or []
    if not isinstance(thinking, list) or not all(isinstance(b, dict) for b in thinking):
        raise ValueError(f"{where}.{THINKING_BLOCKS}: must be a list of blocks")
    # First, unchanged: Claude checks their signatures, and wants them before the tool use.
    blocks = list(thinking) + _text_blocks(message.get("content"), f"{where}.content")
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise ValueError(f"{where}.tool_calls: must be a list")
    for j, call in enumerate(calls):
        blocks.append(_tool_use_block(call, f"{where}.tool_calls.{j}"))
    return blocks


def _tool_use_block(call: object, where: str) -> dict[str, Any]:
    if not isinstance(call, dict) or call.get("type", "function") != "function":
        raise ValueError(f"{where}: only function tool calls are supported")
    function = call.get("function")
    if not isinstance(function, dict):
        raise ValueError(f"{where}.function: required")
    name, call_id = function.get("name"), call.get("id")
    if not isinstance(name, str) or not name or not isinstance(call_id, str) or not call_id:
        raise ValueError(f"{where}: id and function.name are required")
    arguments = _arguments(function.get("arguments"), f"{where}.function.arguments")
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def _arguments(raw: object, where: str) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}  # some clients send "" for a tool without parameters
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        raise ValueError(f"{where}: must be a JSON string")
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError(f"{where}: not valid JSON") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"{where}: must encode a JSON object")
    return parsed


def _tool_result(message: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise ValueError(f"{where}.tool_call_id: required for role 'tool'")
    content = message.get("content")
    result: str | list[dict[str, Any]]
    if content is None or isinstance(content, str):
        result = content or ""
    else:
        result = _text_blocks(content, f"{where}.content")
    return {"type": "tool_result", "tool_use_id": call_id, "content": result}


def _max_tokens(body: dict[str, Any]) -> int:
    for key in OUTPUT_LIMIT_KEYS:
        value = body.get(key)
        if value is None:
            continue
        count = whole_count(value)
        if count is None:
            raise ValueError(f"{key}: must be a positive integer")
        return count
    return DEFAULT_MAX_TOKENS


def _add_tools(out: dict[str, Any], body: dict[str, Any]) -> None:
    tools = body.get("tools")
    if not tools:
        return  # Anthropic rejects tool_choice without tools, so it goes too
    if not isinstance(tools, list):
        raise ValueError("tools: must be a list")
    out["tools"] = [_tool(tool, f"tools.{i}") for i, tool in enumerate(tools)]
    choice = _tool_choice(body.get("tool_choice"))
    if body.get("parallel_tool_calls") is False and choice.get("type") != "none":
        choice = {"type": "auto", **choice, "disable_parallel_tool_use": True}
    if choice:
        out["tool_choice"] = choice


def _tool(tool: object, where: str) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        raise ValueError(f"{where}: only function tools are supported")
    function = tool.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(function, dict) or not isinstance(name, str) or not name:
        raise ValueError(f"{where}.function.name: required")
    out: dict[str, Any] = {
        "name": name,
        "input_schema": function.get("parameters") or _EMPTY_SCHEMA,
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: object) -> dict[str, Any]:
    if choice is None:
        return {}
    if isinstance(choice, str) and choice in _TOOL_CHOICE:
        return {"type": _TOOL_CHOICE[choice]}
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            return {"type": "tool", "name": name}
    raise ValueError("tool_choice: must be 'auto', 'required', 'none' or a function by name")


def _add_sampling(out: dict[str, Any], body: dict[str, Any]) -> None:
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        if stop:
            out["stop_sequences"] = list(stop)
    elif stop is not None:
        raise ValueError("stop: must be a string or a list of strings")
    # Sampling fields go only when they change something: 1 is the default of both, and
    # newer Claude models reject sampling fields (or top_p beside temperature) with a 400.
    # OpenAI's temperature runs 0..2, Anthropic's 0..1: above 1 clamps to 1, the default.
    temperature = _number(body, "temperature")
    if temperature is not None and temperature < 1:
        out["temperature"] = max(temperature, 0.0)
    top_p = _number(body, "top_p")
    if top_p is not None and top_p != 1:
        out["top_p"] = top_p
    if isinstance(body.get("top_k"), int):
        out["top_k"] = body["top_k"]
    metadata = body.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    user_id = user_id if isinstance(user_id, str) and user_id else body.get("user")
    if isinstance(user_id, str) and user_id:
        out["metadata"] = {"user_id": user_id}
    if body.get("stream"):
        out["stream"] = True


def _number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{key}: must be a number")
    return float(value)
