"""Request ids: UUIDv7 (RFC 9562), time-ordered so records sort and index by creation."""

from __future__ import annotations

import os
import time
import uuid

_RAND_A = 0xFFF
_RAND_B = (1 << 62) - 1
_RAND_BYTES = 10  # 74 random bits are used of these 80


def _uuid7_int(ms: int, rand: int) -> int:
    return (
        (ms & ((1 << 48) - 1)) << 80
        | 0x7 << 76  # version
        | ((rand >> 62) & _RAND_A) << 64  # rand_a, 12 bits
        | 0b10 << 62  # variant
        | rand & _RAND_B  # rand_b, 62 bits
    )


def uuid7(now_ms: int | None = None) -> uuid.UUID:
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    return uuid.UUID(int=_uuid7_int(ms, int.from_bytes(os.urandom(_RAND_BYTES), "big")))


def _text(value: int) -> str:
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class RequestIds:
    """A source of request ids for one router. The random bits still come from the operating
    system's CSPRNG, but a block at a time: ``os.urandom`` is a system call that also lets
    other threads take the interpreter lock, and once per request that showed up on the
    gateway's profile."""

    __slots__ = ("_at", "_block", "_pool")

    def __init__(self, block: int = 4096) -> None:
        self._block = block - block % _RAND_BYTES
        self._pool = b""
        self._at = 0

    def __call__(self) -> str:
        at = self._at
        if at + _RAND_BYTES > len(self._pool):
            self._pool, at = os.urandom(self._block), 0
        self._at = at + _RAND_BYTES
        rand = int.from_bytes(self._pool[at : at + _RAND_BYTES], "big")
        return _text(_uuid7_int(time.time_ns() // 1_000_000, rand))
