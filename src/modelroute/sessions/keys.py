"""Which conversation a request belongs to.

In this order: the ``x-modelroute-session-id`` header, ``metadata.session_id``, the body's
``user``; failing all three, a fingerprint of the system prompt and the first user message
(every turn of one conversation repeats both). What a record keeps (``Session.label``): an
explicit id as given, ``user`` and fingerprints only as a hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

from modelroute.request_fields import SESSION_HEADER, SESSION_KEY

MAX_ID = 256  # characters of an explicit id kept; a longer one is hashed
HEADER, METADATA, USER, FINGERPRINT = "header", "metadata", "user", "fingerprint"


class Session(NamedTuple):
    source: str  # header | metadata | user | fingerprint
    key: str  # what pins are stored under (a hash: fixed length, nothing readable)
    label: str  # what the record keeps: "header:conv-42", "user:3fa2...", "fingerprint:9c1e..."


def _digest(text: bytes) -> str:
    return hashlib.blake2b(text, digest_size=16).hexdigest()


def _explicit(source: str, value: str) -> Session:
    key = _digest(f"{source}\0{value}".encode())
    shown = value if source != USER and len(value) <= MAX_ID else key[:16]
    return Session(source, key, f"{source}:{shown}")


def _text(content: Any) -> Any:
    """A message's content, as given (a string or parts), for hashing."""
    return content if isinstance(content, str | list) else None


def fingerprint(body: Mapping[str, Any]) -> str:
    """A hash of the system (and developer) prompt and the first user message."""
    system: list[Any] = []
    first_user: Any = None
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, Mapping):
            continue
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_text(message.get("content")))
        elif role == "user":
            first_user = _text(message.get("content"))
            break
    anthropic_system = body.get("system")  # the Anthropic door's top-level system prompt
    if anthropic_system is not None:
        system.insert(0, _text(anthropic_system))
    return _digest(orjson.dumps([system, first_user], option=orjson.OPT_SORT_KEYS))


def session_of(body: Mapping[str, Any], headers: Mapping[str, str] | None) -> Session:
    explicit = (headers or {}).get(SESSION_HEADER)
    if explicit:
        return _explicit(HEADER, explicit)
    metadata = body.get("metadata")
    if isinstance(metadata, Mapping):
        value = metadata.get(SESSION_KEY)
        if value is not None and str(value):
            return _explicit(METADATA, str(value))
    user = body.get("user")
    if isinstance(user, str) and user:
        return _explicit(USER, user)
    digest = fingerprint(body)
    return Session(FINGERPRINT, digest, f"{FINGERPRINT}:{digest[:16]}")
