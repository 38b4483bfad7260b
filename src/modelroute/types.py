"""Core value types, OpenAI-shaped. No I/O; standard library only.

The canonical request inside modelroute is an OpenAI Chat Completions body kept as the client
sent it (a ``dict``; unknown fields pass through untouched). The canonical answer is a
``Completion`` (an OpenAI ``chat.completion`` body plus what routing and accounting need,
read out once), and a streamed answer is a sequence of ``StreamChunk`` (OpenAI
``chat.completion.chunk`` events).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the provider reported them, normalised.

    ``input_tokens`` counts every prompt token, cached and cache-written ones included (OpenAI's
    ``prompt_tokens``; for Anthropic the sum of ``input_tokens``, ``cache_read_input_tokens``
    and ``cache_creation_input_tokens``). ``output_tokens`` includes reasoning tokens, which
    are billed as output; ``reasoning_tokens`` says how many of them there were.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_openai(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": {
                "cached_tokens": self.cached_input_tokens,
                "cache_creation_tokens": self.cache_write_tokens,
            },
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }

    @classmethod
    def from_openai(cls, raw: Any) -> Usage | None:
        if not isinstance(raw, dict):
            return None
        prompt_details = raw.get("prompt_tokens_details") or {}
        completion_details = raw.get("completion_tokens_details") or {}
        return cls(
            input_tokens=_int(raw.get("prompt_tokens")),
            output_tokens=_int(raw.get("completion_tokens")),
            cached_input_tokens=_int(prompt_details.get("cached_tokens")),
            # Some OpenAI-compatible servers report cache writes here (e.g. via proxies).
            cache_write_tokens=_int(prompt_details.get("cache_creation_tokens")),
            reasoning_tokens=_int(completion_details.get("reasoning_tokens")),
        )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass(slots=True)
class Completion:
    """One upstream answer in OpenAI shape, with the fields routing reads pulled out once."""

    body: dict[str, Any]
    usage: Usage | None
    model_reported: str | None = None
    fingerprint: str | None = None
    content: str | None = None
    finish_reason: str | None = None
    tool_calls: int = 0
    token_logprobs: list[float] | None = None
    top_logprobs: list[dict[str, float]] | None = None  # per token: alternative -> logprob
    # The upstream's own Responses API object, when it served a Responses request natively
    # (``body`` is then its Chat Completions reading, for routing and accounting).
    response: dict[str, Any] | None = None

    @property
    def is_empty(self) -> bool:
        """No text and no tool call: a failure, never a success."""
        return not self.content and not self.tool_calls

    @classmethod
    def from_openai(cls, body: dict[str, Any]) -> Completion:
        choices = body.get("choices") or []
        first = choices[0] if choices and isinstance(choices[0], dict) else {}
        message = first.get("message") or {}
        content = message.get("content")
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        logprob_items = ((first.get("logprobs") or {}).get("content")) or None
        token_logprobs = top = None
        if isinstance(logprob_items, list):
            token_logprobs = [float(i.get("logprob", 0.0)) for i in logprob_items]
            top = [
                {
                    t.get("token", ""): float(t.get("logprob", -math.inf))
                    for t in (i.get("top_logprobs") or [])
                }
                for i in logprob_items
            ]
        return cls(
            body=body,
            usage=Usage.from_openai(body.get("usage")),
            model_reported=body.get("model"),
            fingerprint=body.get("system_fingerprint"),
            content=content if isinstance(content, str) else None,
            finish_reason=first.get("finish_reason"),
            tool_calls=len(message.get("tool_calls") or []),
            token_logprobs=token_logprobs,
            top_logprobs=top,
        )


_NOTHING: dict[str, Any] = {}  # read, never written


@dataclass(slots=True)
class StreamChunk:
    """One streamed event: the parsed OpenAI ``chat.completion.chunk`` and, when the upstream
    already spoke OpenAI, its raw SSE ``data:`` payload, so it can be forwarded as is."""

    data: dict[str, Any]
    raw: bytes | None = None
    content: str = ""  # the text delta of choice 0, if any
    tool_call: bool = False  # carries a tool-call delta
    thinking: bool = False  # carries a piece of a (Claude) thinking block
    finish_reason: str | None = None
    usage: Usage | None = None
    # Delivery hints for relays: ``more`` says the next event is already here (send them
    # together, one write instead of several); ``send`` False means relay nothing for this
    # event (e.g. usage the client did not ask for) but still honour ``more``.
    more: bool = False
    send: bool = True
    # The type of an upstream's Responses API event (``raw`` is its data as sent; ``data``
    # its Chat Completions reading), relayed as is by the Responses door.
    event: str | None = None

    @classmethod
    def from_openai(cls, data: dict[str, Any], raw: bytes | None = None) -> StreamChunk:
        # Once per streamed event: no containers made for absent fields, and the fields
        # passed by position (keywords cost more than the rest of this reading).
        choices = data.get("choices")
        first = choices[0] if choices and isinstance(choices[0], dict) else _NOTHING
        delta = first.get("delta") or _NOTHING
        content = delta.get("content")
        usage = data.get("usage")
        return cls(
            data,
            raw,
            content if isinstance(content, str) else "",
            bool(delta.get("tool_calls")),
            bool(delta.get("thinking_blocks")),  # request_fields.THINKING_BLOCKS
            first.get("finish_reason"),
            None if usage is None else Usage.from_openai(usage),
        )

    @property
    def has_output(self) -> bool:
        # Thinking is output too: the model has answered, and what it thinks streams on.
        return bool(self.content) or self.tool_call or self.thinking


class UpstreamError(Exception):
    """What a provider saw go wrong, raw. ``failures.classify`` turns it into a class, once.

    ``status`` is the HTTP status (0 when none arrived); ``body`` the error body as received;
    ``cause`` what the transport saw ("TimeoutError", "refused", "disconnected", ...);
    ``note`` a provider observation with no status of its own ("invalid_json", "empty",
    "stream_cut", "stream_error_event").
    """

    def __init__(
        self,
        status: int = 0,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        cause: str | None = None,
        note: str | None = None,
        detail: str = "",
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.cause = cause
        self.note = note
        self.detail = detail
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [f"status {self.status}" if self.status else "no status"]
        if self.cause:
            parts.append(self.cause)
        if self.note:
            parts.append(self.note)
        if self.detail:
            parts.append(self.detail)
        return ", ".join(parts)
