"""Prompt caching in the simulator, as OpenAI reports it: a request whose leading messages
repeat an earlier request's (to the same model, within ``ttl_s``) has that prefix's tokens
reported as ``usage.prompt_tokens_details.cached_tokens``, counted in whole blocks of
``block_tokens`` once the prefix reaches ``min_tokens`` (OpenAI: 1024 and 128).

Off unless a model's config sets ``prompt_cache:``. The prefixes are message boundaries:
each request's message prefixes are remembered (hashes only), newest use last, at most
``max_entries`` of them per model.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field


class PromptCacheConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_tokens: int = Field(default=1024, ge=0)
    block_tokens: int = Field(default=128, gt=0)
    ttl_s: float = Field(default=300.0, gt=0)
    max_entries: int = Field(default=100_000, gt=0)


def message_prefixes(messages: list[Any], tokens_of: Callable[[int], int]) -> list[tuple[str, int]]:
    """(hash of messages[:k], the tokens of messages[:k]) for k = 1..len(messages);
    ``tokens_of(k)``: the prompt-token estimate of the first k messages."""
    digest = hashlib.blake2b(digest_size=16)
    out = []
    for k, message in enumerate(messages, start=1):
        digest.update(orjson.dumps(message, option=orjson.OPT_SORT_KEYS))
        out.append((digest.copy().hexdigest(), tokens_of(k)))
    return out


class PromptCache:
    def __init__(
        self, config: PromptCacheConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # prefix hash -> lapses at

    def cached_tokens(self, prefixes: list[tuple[str, int]], prompt_tokens: int) -> int:
        """The tokens this request reads from the cache; then its prefixes are cached."""
        now, config = self._clock(), self.config
        hit = 0
        for key, tokens in prefixes:
            lapses = self._seen.get(key)
            if lapses is not None and lapses > now:
                hit = tokens
        for key, _ in prefixes:
            self._seen[key] = now + config.ttl_s
            self._seen.move_to_end(key)
        while len(self._seen) > config.max_entries:
            self._seen.popitem(last=False)
        hit = min(hit, prompt_tokens)
        if hit < config.min_tokens:
            return 0
        return hit // config.block_tokens * config.block_tokens
