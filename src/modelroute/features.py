"""Request features the planner needs, measured from an OpenAI-shaped body and headers.

Prompt tokens are estimated offline with the o200k_base encoding shipped inside ``bpe-openai``
(never fetched; its compiled tokenizer, loaded by ``o200k.py``). Text past ``_EXACT_CHARS`` is
extrapolated from the measured tokens-per-char of the first part, so estimating stays cheap for
very long prompts. Other tokenizers (Claude, Llama) differ by a few percent to tens of percent;
the estimate is for constraint checks, and the record keeps the provider's reported usage.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from functools import lru_cache
from math import isfinite
from types import MappingProxyType
from typing import Any, TypeGuard

from modelroute.errors import RequestError
from modelroute.planner.context import NO_LIMITS, Limits, RequestContext
from modelroute.request_fields import (
    GATEWAY_PREFIX,
    OUTPUT_LIMIT_KEYS,
    RESPONSES_NATIVE_ONLY,
    ROUTING_METADATA_KEYS,
    TASK_KEY,
    whole_count,
)
from modelroute.request_fields import LIMIT_HEADERS as LIMIT_HEADERS  # (re-exported)
from modelroute.request_fields import TASK_HEADER as TASK_HEADER

_EXACT_CHARS = 16_000
_PER_MESSAGE = 4  # role and separators, as OpenAI's cookbook counts them
_PER_IMAGE = 765  # a 1024x1024 image at high detail on GPT-4o-class models


@lru_cache(maxsize=1)
def _encoder() -> Callable[[str], list[int]]:
    from modelroute.o200k import encoder

    return encoder()


def count_tokens(text: str) -> int:
    if not text:
        return 0
    encode = _encoder()
    if len(text) <= _EXACT_CHARS:
        return len(encode(text))
    head = len(encode(text[:_EXACT_CHARS]))
    return round(head * len(text) / _EXACT_CHARS)


class TokenCounts:
    """Token counts of recently seen texts. System prompts, tool lists and few-shot examples
    repeat request after request, and each is counted once while it stays in the table
    (cleared whole when full: cheaper than LRU bookkeeping on every hit)."""

    def __init__(self, capacity: int = 4096, count: Callable[[str], int] = count_tokens) -> None:
        self.capacity = capacity
        self._count = count
        self._counts: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        count = self._counts.get(text)
        if count is None:
            count = self._count(text)
            if len(self._counts) >= self.capacity:
                self._counts.clear()
            self._counts[text] = count
        return count


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    # ``isinstance(x, Mapping)`` goes through the ABC machinery; bodies parsed from JSON hold
    # plain dicts, so those are settled by the cheap exact-type test first.
    return type(value) is dict or isinstance(value, Mapping)


def _content_text(content: Any) -> tuple[list[str], int]:
    """Text pieces and image count of a message's content (string or list of parts)."""
    if isinstance(content, str):
        return [content], 0
    texts: list[str] = []
    images = 0
    if isinstance(content, list):
        for part in content:
            if not _is_mapping(part):
                continue
            kind = part.get("type")
            if kind in ("text", "input_text") and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind in ("image_url", "image", "input_image"):
                images += 1
    return texts, images


def _limit(raw: str, name: str, field: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise RequestError(f"{name} must be a number, got {raw!r}") from None
    # Not infinite either: a limit is a number the record keeps and a replay plans on again.
    if not isfinite(value) or value < 0:
        raise RequestError(f"{name} must be a finite, non-negative number, got {raw!r}")
    if field == "min_quality" and value > 1:
        raise RequestError(f"{name} must be between 0 and 1, got {raw!r}")
    return value


def _limits(headers: Mapping[str, str], metadata: Mapping[str, Any]) -> Limits:
    """Each limit from its header, else from metadata under the header's name or the short
    field name (the README documents both)."""
    values: dict[str, float] = {}
    for header, field in LIMIT_HEADERS.items():
        raw = headers.get(header)
        name = header
        if raw is None and metadata:
            key = header if header in metadata else field
            value = metadata.get(key)
            raw, name = (None, "") if value is None else (str(value), f"metadata.{key}")
        if raw is not None:
            values[field] = _limit(raw, name, field)
    return Limits(**values) if values else NO_LIMITS


# Word stems that make an unread key look like an attempt at a limit.
_LIMIT_STEMS = ("cost", "usd", "lat", "qual")
_METADATA_LIMITS = (*LIMIT_HEADERS, *LIMIT_HEADERS.values())


def _looks_like_limit(key: str) -> bool:
    squashed = "".join(c for c in key.lower() if c.isalnum()).removeprefix("xmodelroute")
    return squashed[:3] in ("max", "min") and any(s in squashed for s in _LIMIT_STEMS)


def unread_limits(headers: Mapping[str, str], metadata: Mapping[str, Any]) -> tuple[str, ...]:
    """Notes on limit-like headers and metadata keys that are no limit modelroute reads
    (``x-modelroute-max-cost``, ``max_costusd``): ignored, but not silently."""
    notes = []
    for where, keys in (
        ("header", [k for k in headers if k.startswith(GATEWAY_PREFIX)]),
        ("metadata key", list(metadata)),
    ):
        for key in keys:
            if key in ROUTING_METADATA_KEYS or not _looks_like_limit(key):
                continue
            names = LIMIT_HEADERS if where == "header" else _METADATA_LIMITS
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            notes.append(f"{where} {key!r} looks like a limit but is not one; ignored{hint}")
    return tuple(notes)


def _tokens_and_flags(
    body: Mapping[str, Any], counter: Callable[[str], int] = count_tokens
) -> tuple[int, bool]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list")
    texts: list[str] = []
    images = 0
    for message in messages:
        if not _is_mapping(message):
            raise RequestError("each message must be an object with 'role' and 'content'")
        pieces, n_images = _content_text(message.get("content"))
        texts.extend(pieces)
        images += n_images
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        import orjson

        texts.append(orjson.dumps(tools).decode())
    system = body.get("system")  # Anthropic-shaped bodies carry it outside the messages
    if isinstance(system, str):
        texts.append(system)
    # Each text on its own, so a repeated one (a system prompt) is a cache hit for ``counter``.
    text_tokens = sum(counter(text) for text in texts)
    tokens = text_tokens + _PER_MESSAGE * len(messages) + _PER_IMAGE * images
    return tokens, images > 0


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    for key in OUTPUT_LIMIT_KEYS:
        value = body.get(key)
        if value is not None:
            count = whole_count(value)
            if count is None:
                raise RequestError(f"'{key}' must be a positive integer")
            return count
    return None


def request_context(
    body: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
    counter: Callable[[str], int] = count_tokens,
) -> RequestContext:
    """Build the planner's view of a chat request. Header names must be lower-case;
    ``counter`` counts a text's tokens (a ``TokenCounts`` remembers repeated texts)."""
    headers = headers or {}
    raw_meta = body.get("metadata") or {}
    if not _is_mapping(raw_meta):
        raise RequestError("'metadata' must be an object")
    metadata = {str(k): str(v) for k, v in raw_meta.items()}
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestError("'model' must be a string")
    stream_options = body.get("stream_options")
    if stream_options is not None and not _is_mapping(stream_options):
        raise RequestError("'stream_options' must be an object")  # read on the stream path
    tokens, has_images = _tokens_and_flags(body, counter)
    response_format = body.get("response_format")
    needs_json = _is_mapping(response_format) and response_format.get("type") in (
        "json_object",
        "json_schema",
    )
    return RequestContext(
        requested=model,
        task=headers.get(TASK_HEADER) or metadata.get(TASK_KEY),
        metadata=MappingProxyType(metadata),
        prompt_tokens=tokens,
        max_output_tokens=_max_tokens(body),
        has_tools=bool(body.get("tools")),
        has_images=has_images,
        needs_json=needs_json,
        needs_logprobs=bool(body.get("logprobs")),
        limits=_limits(headers, raw_meta),
        notes=unread_limits(headers, metadata) if metadata or _has_prefixed(headers) else (),
        needs_responses=bool(body.get(RESPONSES_NATIVE_ONLY)),
    )


def _has_prefixed(headers: Mapping[str, str]) -> bool:
    """Whether any header may be ours: a cheap test on every request (one join and one
    search, a quarter of a loop's cost), the exact one in ``unread_limits``."""
    return GATEWAY_PREFIX in " ".join(headers)
