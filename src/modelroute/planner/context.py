"""What the planner knows about one request: features measured from the body, limits, labels."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

# Named tuples rather than frozen dataclasses: one of each is built for every request, and a
# frozen dataclass's __init__ sets each field through object.__setattr__.


class Limits(NamedTuple):
    """Per-request limits. They may only tighten a route's constraints, never loosen them."""

    max_cost_usd: float | None = None
    max_latency_ms: float | None = None
    min_quality: float | None = None


NO_LIMITS = Limits()


class RequestContext(NamedTuple):
    requested: str | None = None  # the body's "model": a route, an alias or a model name
    task: str | None = None  # x-modelroute-task header or metadata.task
    metadata: Mapping[str, str] = MappingProxyType({})
    prompt_tokens: int = 0  # estimated offline, see features.py
    max_output_tokens: int | None = None  # max_tokens / max_completion_tokens if given
    has_tools: bool = False
    has_images: bool = False
    needs_json: bool = False
    needs_logprobs: bool = False
    limits: Limits = NO_LIMITS
    notes: tuple[str, ...] = ()  # what reading the request noticed (e.g. an unread limit)
    # a Responses API request the Chat Completions bridge cannot carry: only a model that
    # serves the Responses API itself (capability ``responses``) may take it
    needs_responses: bool = False
    # The model this request's session is pinned to (session affinity), looked up by the
    # router before planning; None when the route has no affinity or the session no pin.
    pin: str | None = None
