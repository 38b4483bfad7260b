"""A streamed answer put back together as the ``chat.completion`` it streamed, so that it can
be kept in the cache and later answered plain or replayed as a stream.

Only what a replay can give back whole is kept: one choice (index 0), text and tool calls, a
finish reason. A stream that carried other choices, logprobs or thinking blocks is not kept.
"""

from __future__ import annotations

from typing import Any

from modelroute.request_fields import THINKING_BLOCKS
from modelroute.types import StreamChunk, Usage


class StreamCollector:
    __slots__ = ("base", "finish_reason", "keepable", "text", "tools", "usage")

    def __init__(self) -> None:
        self.base: dict[str, Any] | None = None
        self.text: list[str] = []
        self.tools: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.keepable = True

    def add(self, chunk: StreamChunk) -> None:
        data = chunk.data
        if self.base is None:
            self.base = {k: data.get(k) for k in ("id", "created", "model", "system_fingerprint")}
        if chunk.usage is not None:
            self.usage = chunk.usage
        for choice in data.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                self.keepable = False
                continue
            if choice.get("logprobs"):
                self.keepable = False
            delta = choice.get("delta") or {}
            if delta.get(THINKING_BLOCKS):
                self.keepable = False
            content = delta.get("content")
            if isinstance(content, str):
                self.text.append(content)
            for call in delta.get("tool_calls") or ():
                self._tool_delta(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def _tool_delta(self, call: Any) -> None:
        if not isinstance(call, dict):
            self.keepable = False
            return
        index = call.get("index", len(self.tools))
        tool = self.tools.get(index)
        if tool is None:
            tool = self.tools[index] = {
                "id": None, "type": "function", "function": {"name": "", "arguments": ""}
            }  # fmt: skip
        if call.get("id"):
            tool["id"] = call["id"]
        function = call.get("function") or {}
        tool["function"]["name"] += function.get("name") or ""
        tool["function"]["arguments"] += function.get("arguments") or ""

    def completion_body(self) -> dict[str, Any] | None:
        """The ``chat.completion`` the stream carried, or None when it cannot be kept whole."""
        if not self.keepable or self.base is None or self.finish_reason is None:
            return None
        text = "".join(self.text)
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if self.tools:
            message["tool_calls"] = [self.tools[i] for i in sorted(self.tools)]
        if not text and not self.tools:
            return None
        return {
            **self.base,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": None if self.usage is None else self.usage.to_openai(),
        }
