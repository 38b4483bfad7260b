"""An upstream's answer as every adapter reads it: a whole body asked for and parsed, and
stream events parsed; what is not what the API sends fails as one ``UpstreamError``
(``invalid_json``), the same on every wire format."""

from __future__ import annotations

from typing import Any

import orjson

from modelroute.providers.http import Transport, read_error
from modelroute.types import UpstreamError


async def post_for_body(
    transport: Transport, url: str, headers: dict[str, str], payload: bytes
) -> bytes:
    """The body of a 200 answer; any other status is the upstream's error, read."""
    async with transport.post(url, headers, payload) as response:
        if response.status != 200:
            raise await read_error(response)
        return await response.read()


def malformed(raw: bytes, detail: str) -> UpstreamError:
    """A 200 answer whose body is not what the API answers."""
    return UpstreamError(status=200, note="invalid_json", body=raw[:1000], detail=detail)


def answer_json(raw: bytes) -> Any:
    """A whole answer's body, parsed."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise malformed(raw, "response body is not JSON") from None


def event_json(data: bytes) -> Any:
    """A stream event's data, parsed."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise _not_json(data) from None


def event_object(data: bytes) -> dict[str, Any]:
    """A stream event's data, which must be a JSON object. (Parsed here rather than through
    ``event_json``: this runs once per streamed event.)"""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise _not_json(data) from None
    if not isinstance(parsed, dict):
        raise UpstreamError(note="invalid_json", body=data[:1000], detail="event not an object")
    return parsed


def _not_json(data: bytes) -> UpstreamError:
    return UpstreamError(note="invalid_json", body=data[:1000], detail="stream event is not JSON")
