"""What makes two requests the same request for the response cache, and which may be cached.

The key is a BLAKE2b hash of the route, the model the planner resolved (its name and the
upstream model id) and the request's body in canonical form (keys sorted at every depth),
without the fields that do not change the answer: who asks (``user``, ``metadata``,
``safety_identifier``), how it is delivered (``stream``, ``stream_options``), provider-side
storage and billing hints (``store``, ``service_tier``, ``prompt_cache_key``) and ``model``
(the route and the resolved model stand for it). Every other field, known or not, is part of
the key: a field this module has never heard of may change the answer, so it must.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

IGNORED_FIELDS = frozenset(
    {
        "model", "user", "metadata", "safety_identifier", "stream", "stream_options",
        "store", "service_tier", "prompt_cache_key",
    }
)  # fmt: skip
# Written 0 or 0.0 alike: the same setting, one key.
_FLOAT_FIELDS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")


def cache_key(route: str, model: str, model_id: str, body: Mapping[str, Any]) -> str:
    """The hex key of a request (``body`` as the client sent it) on ``route``, planned to
    ``model`` (whose upstream id is ``model_id``)."""
    kept = {k: v for k, v in body.items() if k not in IGNORED_FIELDS}
    for name in _FLOAT_FIELDS:
        value = kept.get(name)
        if type(value) is int:
            kept[name] = float(value)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{route}\0{model}\0{model_id}\0".encode())
    digest.update(orjson.dumps(kept, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()


def samples(body: Mapping[str, Any]) -> bool:
    """Whether the request asks for a sample: ``temperature`` above 0, or unset (OpenAI's and
    Anthropic's defaults are 1, so an unset temperature samples)."""
    temperature = body.get("temperature")
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        return True
    return temperature > 0


def uncacheable(body: Mapping[str, Any], allow_sampling: bool) -> str | None:
    """Why this request is never answered from (nor kept in) the cache, or None if it may be."""
    n = body.get("n")
    if n is not None and n != 1:
        return "several choices (n)"
    if not allow_sampling and samples(body):
        return "sampling (temperature unset or above 0)"
    return None
