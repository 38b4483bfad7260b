"""The response cache in process memory: least recently used first out, bounded by entries and
by bytes, each entry expiring ``ttl`` after it was kept on the given monotonic clock."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class MemoryCache:
    """``max_entries`` and ``max_bytes`` (the entries' encoded size) bound it; an entry larger
    than a tenth of ``max_bytes`` is not kept (it would push out many others)."""

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("a cache needs room for at least one entry and one byte")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self.bytes = 0
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= self.clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return found[1]

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        size = len(value)
        if size > self.max_bytes // 10:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (self.clock() + ttl_s, value)
        self.bytes += size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    async def delete(self, key: str) -> bool:
        """Whether there was an entry (expired or not) to delete."""
        if key not in self._entries:
            return False
        self._drop(key)
        return True

    def _drop(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self.bytes -= len(value)

    async def aclose(self) -> None:
        return None
