"""Request ids: UUIDv7 (RFC 9562), time-ordered so records sort and index by creation."""

from __future__ import annotations

import os
import time
import uuid

_RAND_A = 0xFFF
_RAND_B = (1 << 62) - 1


def _uuid7_int(now_ms: int | None) -> int:
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    return (
        (ms & ((1 << 48) - 1)) << 80
        | 0x7 << 76  # version
        | ((rand >> 62) & _RAND_A) << 64  # rand_a, 12 bits
        | 0b10 << 62  # variant
        | rand & _RAND_B  # rand_b, 62 bits
    )


def uuid7(now_ms: int | None = None) -> uuid.UUID:
    return uuid.UUID(int=_uuid7_int(now_ms))


def new_request_id() -> str:
    """A UUIDv7 in its canonical text form, without building a ``uuid.UUID`` on the way."""
    h = f"{_uuid7_int(None):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
