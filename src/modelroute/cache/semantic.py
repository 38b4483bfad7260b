"""The semantic side of the response cache: a paraphrase answered from the cache.

For a route with ``cache: {mode: semantic, similarity: S}``, a request that misses the exact
cache is looked up here. Two requests may share an answer only when everything but the text
of their last user message is the same: the route, the resolved model, every generation
field (temperature, tools, response format, max tokens...) and every earlier message,
system prompt included. That is the partition (``probe``): a hash computed like the exact
key with the last message's text left out. Inside a partition, the last user message's text
(canonical form: its text parts joined, whitespace collapsed) is compared by the cosine
similarity of its sentence embedding, and the best cached one at ``S`` or above answers.

Why only the last user message is embedded: a long shared system prompt or history would
dominate an embedding of the whole conversation, so two different questions under the same
system prompt would look alike; and the embedding model reads a bounded window (256 word
pieces for all-MiniLM-L6-v2), so text past it would be silently ignored. A last message that
does not fit the window whole, or that holds anything but text (an image, audio, a file), is
not looked up semantically (the exact cache still applies).

The index lives in this process (entries are not shared between replicas; the answers
themselves stay where the exact cache keeps them, so a semantic entry is the exact key of a
cached answer and its vector). It is bounded by entries, least recently used first out, and
searched by brute force: one matrix product over a partition's normalised vectors, about
1 ms of CPU for 10,000 entries of 384 floats (measured), small beside the embedding itself.
Embedding is CPU work: it runs on one worker thread, off the event loop, and its time is
recorded.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from modelroute.cache.key import cache_key

F32 = npt.NDArray[np.float32]
# The text to embed -> its L2-normalised vector, or None when it does not fit the model whole.
Encoder = Callable[[str], F32 | None]

DEFAULT_MAX_ENTRIES = 10_000
# Longer last messages are not embedded at all: far past any embedding model's window.
MAX_TEXT_CHARS = 8_000
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Probe:
    """What a request is looked up (and kept) by: its partition and its text's vector."""

    partition: str
    vector: F32
    embed_ms: float


def canonical_text(body: Mapping[str, Any]) -> str | None:
    """The last user message's text (its text parts joined, each run of whitespace as one
    space), or None when the request has no such message or it holds anything but text."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    content = last.get("content")
    if isinstance(content, list):
        texts = [
            part.get("text") if isinstance(part, dict) and part.get("type") == "text" else None
            for part in content
        ]
        if not texts or any(not isinstance(t, str) for t in texts):
            return None
        content = "\n".join(t for t in texts if isinstance(t, str))
    if not isinstance(content, str):
        return None
    text = _SPACE.sub(" ", content).strip()
    return text if text and len(text) <= MAX_TEXT_CHARS else None


def partition(route: str, model: str, model_id: str, body: Mapping[str, Any]) -> str:
    """The exact cache key of ``body`` with its last message's text left out: requests that
    may share an answer have the same partition."""
    messages = body["messages"]
    blanked = {**messages[-1], "content": None, "\0semantic": True}
    return cache_key(route, model, model_id, {**body, "messages": [*messages[:-1], blanked]})


class _Partition:
    """The vectors of one partition, rows 0..n-1 of a growing matrix; a removed row is
    filled with the last one, so the live rows stay contiguous."""

    __slots__ = ("expires", "keys", "n", "rows", "vectors")

    def __init__(self, dim: int) -> None:
        self.vectors: F32 = np.zeros((8, dim), dtype=np.float32)
        self.expires = np.zeros(8, dtype=np.float64)
        self.keys: list[str] = []
        self.rows: dict[str, int] = {}
        self.n = 0

    def add(self, key: str, vector: F32, expires: float) -> None:
        row = self.rows.get(key)
        if row is None:
            if self.n == len(self.vectors):
                self.vectors = np.concatenate([self.vectors, np.zeros_like(self.vectors)])
                self.expires = np.concatenate([self.expires, np.zeros_like(self.expires)])
            row, self.n = self.n, self.n + 1
            self.rows[key] = row
            self.keys.append(key)
        self.vectors[row] = vector
        self.expires[row] = expires

    def remove(self, key: str) -> None:
        row = self.rows.pop(key)
        last = self.n - 1
        if row != last:
            moved = self.keys[last]
            self.vectors[row], self.expires[row] = self.vectors[last], self.expires[last]
            self.keys[row], self.rows[moved] = moved, row
        self.keys.pop()
        self.n = last

    def expired(self, now: float) -> list[str]:
        return [self.keys[i] for i in np.flatnonzero(self.expires[: self.n] <= now)]

    def nearest(self, vector: F32, threshold: float, now: float) -> list[tuple[str, float]]:
        """Keys whose similarity is at least ``threshold``, most similar first."""
        sims = self.vectors[: self.n] @ vector
        found = np.flatnonzero(sims >= threshold)
        order = found[np.argsort(-sims[found], kind="stable")]
        return [(self.keys[i], float(sims[i])) for i in order]


class SemanticIndex:
    """Vectors of cached answers, per partition, bounded by ``max_entries`` in all
    (least recently used first out), each expiring ``ttl`` after it was kept on ``clock``.
    ``encoder`` runs on one worker thread; ``timer`` times it."""

    def __init__(
        self,
        encoder: Encoder,
        dim: int,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        if max_entries < 1:
            raise ValueError("a semantic index needs room for at least one entry")
        self.encoder, self.dim, self.max_entries = encoder, dim, max_entries
        self.clock, self.timer = clock, timer
        self._parts: dict[str, _Partition] = {}
        self._order: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._worker: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        return len(self._order)

    async def probe(
        self, route: str, model: str, model_id: str, body: Mapping[str, Any]
    ) -> Probe | None:
        """The request's partition and vector, or None when it cannot be looked up
        semantically (no last user message of text only, or one too long to embed whole)."""
        text = canonical_text(body)
        if text is None:
            return None
        if self._worker is None:  # one thread: the model runs one text at a time
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="modelroute-embed")
        started = self.timer()
        loop = asyncio.get_running_loop()
        vector = await loop.run_in_executor(self._worker, self.encoder, text)
        spent_ms = (self.timer() - started) * 1000
        if vector is None:
            return None
        return Probe(partition(route, model, model_id, body), vector, spent_ms)

    def nearest(self, probe: Probe, threshold: float) -> list[tuple[str, float]]:
        """The exact keys of cached answers to paraphrases, most similar first."""
        part = self._parts.get(probe.partition)
        if part is None:
            return []
        now = self.clock()
        for key in part.expired(now):
            self.discard(probe.partition, key)
        return part.nearest(probe.vector, threshold, now) if part.n else []

    def used(self, probe: Probe, key: str) -> None:
        """``key`` answered: the most recently used now."""
        if (probe.partition, key) in self._order:
            self._order.move_to_end((probe.partition, key))

    def add(self, probe: Probe, key: str, ttl_s: float) -> None:
        part = self._parts.get(probe.partition)
        if part is None:
            part = self._parts[probe.partition] = _Partition(self.dim)
        part.add(key, probe.vector, self.clock() + ttl_s)
        self._order[(probe.partition, key)] = None
        self._order.move_to_end((probe.partition, key))
        while len(self._order) > self.max_entries:
            self.discard(*next(iter(self._order)))

    def discard(self, partition_key: str, key: str) -> None:
        """Forget an entry (its answer is gone from the exact cache, or it was pushed out)."""
        if (partition_key, key) not in self._order:
            return
        del self._order[(partition_key, key)]
        part = self._parts[partition_key]
        part.remove(key)
        if part.n == 0:
            del self._parts[partition_key]

    def close(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)
            self._worker = None
