"""Translation for the Anthropic-compatible front door (``POST /v1/messages``). Pure.

A client's Messages request becomes the canonical OpenAI body (``messages_to_openai``): what
has a Chat Completions field is translated, the rest (thinking, top_k, service_tier, fields
unknown here) is kept as sent under ``ANTHROPIC_FIELDS`` and thinking blocks of earlier turns
under ``THINKING_BLOCKS``, for the providers to pass on or translate. It is routed like any
other, and the answer goes back as a Message (``completion_to_message``) or as
Anthropic's stream events (``StreamToAnthropic``); the answer side lives in
``anthropic_reply`` and is re-exported here, the one import the server needs. The upstream
direction is ``providers.anthropic_wire``; the two are inverses on everything both formats
can express.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelroute.request_fields import ANTHROPIC_FIELDS, THINKING_BLOCKS, whole_count
from modelroute.server.anthropic_reply import (
    StreamToAnthropic,
    completion_to_message,
    error_body,
)

__all__ = ["StreamToAnthropic", "completion_to_message", "error_body", "messages_to_openai"]

_TOOL_CHOICE = {"auto": "auto", "any": "required", "none": "none"}
# Blocks a client echoes back from earlier Claude turns: kept beside the message, signed, for
# the model that wrote them (an OpenAI-format model has no use for them and never sees them).
_THINKING_KINDS = frozenset({"thinking", "redacted_thinking"})
# The fields translated into the canonical body; every other goes under ANTHROPIC_FIELDS.
_TRANSLATED = frozenset(
    {
        "model", "messages", "max_tokens", "system", "stop_sequences", "temperature",
        "top_p", "stream", "metadata", "tools", "tool_choice",
    }
)  # fmt: skip
_MIN_THINKING_BUDGET = 1024  # as the Messages API requires


# -- requests --------------------------------------------------------------------------------


def messages_to_openai(body: object, *, counting: bool = False) -> dict[str, Any]:
    """A Messages request as the canonical OpenAI body; ``ValueError`` names what is wrong.
    ``counting``: a token-counting request, which has no ``max_tokens``."""
    if not isinstance(body, dict):
        raise ValueError("body: must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ValueError("model: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages: Field required (a non-empty list)")
    out: dict[str, Any] = {
        "model": model,  # names a route or a model of the policy
        "messages": _system(body.get("system")) + _messages(messages),
    }
    if not counting:
        max_tokens = whole_count(body.get("max_tokens"))  # 292.0 is 292; sent as an integer
        if max_tokens is None:
            raise ValueError("max_tokens: Field required (a positive integer)")
        out["max_tokens"] = max_tokens
    _copy_sampling(out, body)
    _copy_tools(out, body)
    extra = _extensions(body, out.get("max_tokens"))
    if extra:
        out[ANTHROPIC_FIELDS] = extra
    return out


def _extensions(body: dict[str, Any], max_tokens: int | None) -> dict[str, Any]:
    """What the canonical body has no field for, as sent; what the gateway knows of it is
    checked as the Messages API checks it, whichever upstream serves the request."""
    extra = {k: v for k, v in body.items() if k not in _TRANSLATED and v is not None}
    top_k = extra.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise ValueError("top_k: must be a non-negative integer")
    if extra.get("service_tier", "auto") not in ("auto", "standard_only"):
        raise ValueError("service_tier: must be 'auto' or 'standard_only'")
    if "thinking" in extra:
        _check_thinking(extra["thinking"], max_tokens)
    return extra


def _check_thinking(thinking: object, max_tokens: int | None) -> None:
    if not isinstance(thinking, dict) or not isinstance(thinking.get("type"), str):
        raise ValueError("thinking: must be an object with a 'type'")
    if thinking["type"] != "enabled":
        return  # disabled, adaptive, ...: the upstream (or its translation) decides
    budget = thinking.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < _MIN_THINKING_BUDGET:
        raise ValueError(
            f"thinking.budget_tokens: must be an integer of at least {_MIN_THINKING_BUDGET}"
        )
    if max_tokens is not None and budget >= max_tokens:
        raise ValueError("thinking.budget_tokens: must be less than max_tokens")


def _system(system: object) -> list[dict[str, Any]]:
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    if not isinstance(system, list):
        raise ValueError("system: must be a string or a list of text blocks")
    out = []
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise ValueError(f"system.{i}: must be a text block")
        part = _text_part(block, f"system.{i}")
        # One message per block keeps each block's cache_control where the client put it.
        out.append(
            {"role": "system", "content": [part] if "cache_control" in part else part["text"]}
        )
    return out


def _messages(messages: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise ValueError(f"{where}: must be an object")
        role, content = message.get("role"), message.get("content")
        if role == "user":
            out.extend(_user_messages(content, where))
        elif role == "assistant":
            out.append(_assistant_message(content, where))
        else:
            raise ValueError(f"{where}.role: must be 'user' or 'assistant'")
    return out


def _blocks(content: object, where: str) -> list[dict[str, Any]]:
    if not isinstance(content, list) or not content:
        raise ValueError(f"{where}.content: must be a string or a non-empty list of blocks")
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise ValueError(f"{where}.content.{j}: must be a block with a 'type'")
    return content


def _user_messages(content: object, where: str) -> list[dict[str, Any]]:
    """Tool results become ``tool`` messages, which OpenAI wants before the user's text."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(_blocks(content, where)):
        at, kind = f"{where}.content.{j}", block["type"]
        if kind == "tool_result":
            tools.append(_tool_message(block, at))
        elif kind == "text":
            parts.append(_text_part(block, at))
        elif kind == "image":
            parts.append(_image_part(block, at))
        else:
            raise ValueError(f"{at}.type: unsupported block type {kind!r} in a user message")
    if not parts:
        return tools
    plain = len(parts) == 1 and parts[0].keys() == {"type", "text"}
    return [*tools, {"role": "user", "content": parts[0]["text"] if plain else parts}]


def _assistant_message(content: object, where: str) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for j, block in enumerate(_blocks(content, where)):
        at, kind = f"{where}.content.{j}", block["type"]
        if kind == "text":
            texts.append(_text_part(block, at)["text"])
        elif kind == "tool_use":
            calls.append(_tool_call(block, at))
        elif kind in _THINKING_KINDS:
            thinking.append(block)  # as sent: its signature covers it
        else:
            raise ValueError(f"{at}.type: unsupported block type {kind!r} in an assistant message")
    # OpenAI wants content null beside tool calls, and a string without them.
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
    }
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message[THINKING_BLOCKS] = thinking
    return message


def _text_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    text = block.get("text")
    if not isinstance(text, str):
        raise ValueError(f"{where}.text: must be a string")
    part: dict[str, Any] = {"type": "text", "text": text}
    if "cache_control" in block:
        part["cache_control"] = block["cache_control"]
    return part


def _image_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source, dict):
        media_type, data = source.get("media_type"), source.get("data")
        if not isinstance(media_type, str) or not isinstance(data, str):
            raise ValueError(f"{where}.source: media_type and data must be strings")
        url = f"data:{media_type};base64,{data}"
    elif kind == "url" and isinstance(source, dict) and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise ValueError(f"{where}.source: must be a base64 or url image source")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_call(block: dict[str, Any], where: str) -> dict[str, Any]:
    call_id, name, args = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(call_id, str) or not isinstance(name, str) or not isinstance(args, dict):
        raise ValueError(f"{where}: tool_use needs string id and name and an object input")
    function = {"name": name, "arguments": orjson.dumps(args).decode()}
    return {"id": call_id, "type": "function", "function": function}


def _tool_message(block: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise ValueError(f"{where}.tool_use_id: Field required")
    content = block.get("content")
    result: str | list[dict[str, Any]]
    if content is None or isinstance(content, str):
        result = content or ""
    elif isinstance(content, list):
        result = []
        for k, item in enumerate(content):
            if not isinstance(item, dict) or item.get("type") != "text":
                # OpenAI tool messages carry text only; dropping an image would be silent.
                raise ValueError(f"{where}.content.{k}: only text is supported in tool_result")
            result.append(_text_part(item, f"{where}.content.{k}"))
    else:
        raise ValueError(f"{where}.content: must be a string or a list of text blocks")
    return {"role": "tool", "tool_call_id": call_id, "content": result}


def _copy_sampling(out: dict[str, Any], body: dict[str, Any]) -> None:
    stop = body.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise ValueError("stop_sequences: must be a list of strings")
        if stop:
            out["stop"] = list(stop)
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"{key}: must be a number")
        out[key] = value
    if body.get("stream") is not None:
        out["stream"] = bool(body["stream"])
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise ValueError("metadata: must be an object")
        out["metadata"] = metadata  # routing reads metadata.task and friends


def _copy_tools(out: dict[str, Any], body: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise ValueError("tools: must be a list")
    if not tools:
        return  # OpenAI rejects tool_choice without tools, so it goes too
    out["tools"] = [_function_tool(tool, f"tools.{i}") for i, tool in enumerate(tools)]
    choice = body.get("tool_choice")
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind in _TOOL_CHOICE:
        out["tool_choice"] = _TOOL_CHOICE[str(kind)]
    elif kind == "tool" and isinstance(choice, dict) and isinstance(choice.get("name"), str):
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise ValueError("tool_choice: type must be auto, any, none, or tool with a name")
    if isinstance(choice, dict) and choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False


def _function_tool(tool: object, where: str) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise ValueError(f"{where}: must be an object")
    if tool.get("type", "custom") != "custom":
        raise ValueError(f"{where}.type: server tool {tool.get('type')!r} is not supported")
    name, schema = tool.get("name"), tool.get("input_schema")
    if not isinstance(name, str) or not name or not isinstance(schema, dict):
        raise ValueError(f"{where}: name and input_schema are required")
    function: dict[str, Any] = {"name": name, "parameters": schema}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}
