"""Stored responses of the Responses API front door: what ``GET /v1/responses/{id}``, its
``input_items`` and ``previous_response_id`` read.

Each ``response`` the door returned with ``store`` true (the API's default) is kept under its
id, whole once it is complete (a stream's when it ended): the object as sent, its input items
and the API key that created it. The input items are the whole conversation the response
answered: the previous response's input items and output, then the request's own input, each
with an id (an item sent without one is given one), so one read gives a later turn everything
before it. ``instructions`` are not part of it: as in the Responses API, a turn's
instructions apply to that turn only.

Entries live where ``serve --state`` says, in the cache's stores under their own namespace
(``MemoryCache``: this process, bounded by entries and bytes; ``RedisCache``: shared by every
replica, bounded by Redis's ``maxmemory-policy``), each for ``ttl_s`` seconds (30 days by
default, as the API keeps them). A response created with an API key is seen only by that key:
to any other caller it does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from modelroute.cache import Entries, MemoryCache

if TYPE_CHECKING:
    from modelroute.cache.redis_cache import ErrorHook

DEFAULT_TTL_S = 30 * 24 * 3600.0
# The operation label of ``modelroute_state_errors_total`` for this store's Redis errors.
OPERATION = "stored_responses"
# Id prefixes of input items given an id here, by item type (the API's own prefixes).
_ID_PREFIXES = {"message": "msg", "function_call": "fc", "function_call_output": "fco"}
# Fields an item carries when read back that a request's input item does not take.
_READ_ONLY = ("id", "status")


@dataclass(frozen=True, slots=True)
class StoredResponse:
    response: dict[str, Any]  # the ``response`` object, as the client got it
    input_items: list[dict[str, Any]]  # the whole conversation it answered, oldest first
    owner: str | None  # the key id of the API key that created it; None: no key
    # the policy's model whose upstream answered in the Responses API's own terms (and may
    # keep the response itself); None: answered through the bridge
    native_model: str | None = None

    def encode(self) -> bytes:
        return orjson.dumps(
            {"response": self.response, "input": self.input_items, "owner": self.owner,
             "native": self.native_model}
        )  # fmt: skip

    @classmethod
    def decode(cls, raw: bytes) -> StoredResponse | None:
        """None for bytes that are not an entry (written by another version, or damaged)."""
        try:
            data = orjson.loads(raw)
            response, items, owner = data["response"], data["input"], data["owner"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None
        if not isinstance(response, dict) or not isinstance(items, list):
            return None
        native = data.get("native")
        return cls(
            response,
            items,
            owner if isinstance(owner, str) else None,
            native if isinstance(native, str) else None,
        )

    def kept_upstream(self) -> str | None:
        """The model whose upstream keeps this response itself (it answered natively and
        said it stored it): a next turn there may name it instead of resending it all."""
        return self.native_model if self.response.get("store") is True else None

    def context(self) -> list[dict[str, Any]]:
        """The conversation up to and including this response, as a next request's input.
        Reasoning items stay out: they are one upstream's, which no other reads (and which
        would keep the turn from the bridge); the upstream that keeps them is sent the id."""
        output = self.response.get("output")
        items = [*self.input_items, *(output if isinstance(output, list) else ())]
        return [
            _as_input(item)
            for item in items
            if isinstance(item, dict) and item.get("type") != "reasoning"
        ]


class ResponseStore:
    def __init__(self, entries: Entries | None = None, ttl_s: float = DEFAULT_TTL_S) -> None:
        if not ttl_s > 0:
            raise ValueError(f"stored responses need a positive lifetime, got {ttl_s!r}")
        self.entries: Entries = entries if entries is not None else MemoryCache()
        self.ttl_s = ttl_s

    async def keep(self, entry: StoredResponse) -> None:
        response_id = entry.response.get("id")
        if isinstance(response_id, str) and response_id:
            await self.entries.put(response_id, entry.encode(), self.ttl_s)

    async def get(self, response_id: str, owner: str | None) -> StoredResponse | None:
        """The stored response, or None (unknown, expired, deleted, or another key's)."""
        raw = await self.entries.get(response_id)
        entry = None if raw is None else StoredResponse.decode(raw)
        if entry is None or (entry.owner is not None and entry.owner != owner):
            return None
        return entry

    async def delete(self, response_id: str, owner: str | None) -> bool:
        """Whether a response the caller may see was deleted."""
        if await self.get(response_id, owner) is None:
            return False
        return await self.entries.delete(response_id)

    async def aclose(self) -> None:
        await self.entries.aclose()


def input_items(given: object, response_id: str) -> list[dict[str, Any]]:
    """A request's ``input`` as the input items stored with its response: a string is one
    user message, text content is a list of parts, and each item has an id."""
    tail = response_id.removeprefix("resp_")
    raw = [{"role": "user", "content": given}] if isinstance(given, str) else given
    out: list[dict[str, Any]] = []
    for i, item in enumerate(raw if isinstance(raw, list) else ()):
        if not isinstance(item, dict):
            continue
        item = {"type": "message", **item} if "type" not in item else dict(item)
        kind = item["type"]
        if kind == "message":
            content = item.get("content")
            if isinstance(content, str):
                part = "output_text" if item.get("role") == "assistant" else "input_text"
                text: dict[str, Any] = {"type": part, "text": content}
                if part == "output_text":
                    text["annotations"] = []
                item["content"] = [text]
            item.setdefault("status", "completed")
        if not item.get("id"):
            item["id"] = f"{_ID_PREFIXES.get(str(kind), 'item')}_{tail}_{i}"
        out.append(item)
    return out


def _as_input(item: dict[str, Any]) -> dict[str, Any]:
    """An item read back, as a request's input item: the ids and statuses given here mean
    nothing to an upstream (one that serves the Responses API would look them up), so they
    go; other items (reasoning, built-in tool calls) keep theirs."""
    if item.get("type") not in _ID_PREFIXES:
        return item
    return {key: value for key, value in item.items() if key not in _READ_ONLY}


def open_responses(
    url: str,
    prefix: str = "modelroute:",
    ttl_s: float | None = None,
    on_error: ErrorHook | None = None,
) -> ResponseStore:
    """``memory`` (this process) or a ``redis://`` URL (``?prefix=`` honoured), as for
    ``serve --state``: the same choice as the response cache's and the sessions' pins.
    Entries are kept ``ttl_s`` seconds (``DEFAULT_TTL_S`` when None). ``on_error`` counts
    each time Redis cannot be reached, as ``("stored_responses", outcome)``: ``closed``, a
    read or delete refused (503); ``skipped``, a response not stored."""
    ttl = DEFAULT_TTL_S if ttl_s is None else ttl_s
    if url == "memory":
        return ResponseStore(ttl_s=ttl)
    from modelroute.cache.redis_cache import RedisCache
    from modelroute.state.backends import split_prefix
    from modelroute.state.redis_state import connect

    url, prefix = split_prefix(url, prefix)
    entries = RedisCache(
        connect(url), prefix, on_error, "responses", fail_open=False, operation=OPERATION
    )
    return ResponseStore(entries, ttl)
