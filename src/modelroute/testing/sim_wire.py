"""What a provider wire format must supply to the simulator: one small protocol.

The behaviour engine decides *what* happens (outcome, answer, timing); a ``Wire`` only says
how that looks in its provider's bytes. Adding a provider means one module implementing
this protocol, with no branches in the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from modelroute.testing.sim_engine import ContextOverflow, Reply, SimRequest


class BadRequest(Exception):
    """The request body is not a valid request for this wire format (-> 400)."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code  # the error's code, where the API gives one


@dataclass(frozen=True, slots=True)
class WireError:
    """A provider-shaped error response, ready to send."""

    status: int
    body: bytes
    reason: str | None = None


@dataclass(slots=True)
class Exchange:
    """One answered request: everything a wire needs to render the body or the stream."""

    token: str  # random hex, the tail of every id in this exchange
    created: int  # unix seconds
    model: str  # the reported model
    fingerprint: str
    req: SimRequest
    reply: Reply
    cached_tokens: int = 0  # prompt tokens read from the model's prompt cache


class Wire(Protocol):
    """One provider's wire format: request parsing, bodies, stream events and errors."""

    name: str
    request_id_header: str

    def authorized(self, headers: Mapping[str, str], api_key: str) -> bool: ...

    def parse(self, body: dict[str, Any]) -> SimRequest:
        """Read what the engine needs; raise ``BadRequest`` for an invalid body."""
        ...

    def completion(self, x: Exchange) -> bytes: ...

    def malformed_body(self, x: Exchange) -> bytes: ...

    def stream_head(self, x: Exchange) -> bytes: ...

    def stream_piece(self, x: Exchange, i: int) -> bytes: ...

    def stream_tail(self, x: Exchange) -> bytes: ...

    def stream_malformed(self, x: Exchange) -> bytes: ...

    def stream_error(self) -> bytes: ...

    def unauthorized(self) -> WireError: ...

    def bad_request(
        self, message: str, param: str | None = None, code: str | None = None
    ) -> WireError: ...

    def not_found(self, model: str) -> WireError: ...

    def context_length(self, overflow: ContextOverflow) -> WireError: ...

    def server_error(self) -> WireError: ...

    def overloaded(self) -> WireError: ...

    def rate_limited(self, model: str, retry_after_s: float) -> WireError: ...


def text_of(content: object) -> str:
    """The text of a message content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def optional_int(body: Mapping[str, Any], key: str, minimum: int) -> int | None:
    """An optional integer field (bools are not integers here, unlike in Python)."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"Invalid type for '{key}': expected an integer.", key)
    if value < minimum:
        raise BadRequest(
            f"Invalid '{key}': integer below minimum value. Expected a value >= {minimum}, "
            f"but got {value} instead.",
            key,
        )
    return value


def optional_bool(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(f"Invalid type for '{key}': expected a boolean.", key)
    return value


def string_list(value: object, key: str) -> tuple[str, ...]:
    """A string or a list of strings (stop sequences), as a tuple."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise BadRequest(f"Invalid type for '{key}': expected a string or array of strings.", key)


def sse(data: bytes, event: str | None = None) -> bytes:
    """One server-sent event."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
