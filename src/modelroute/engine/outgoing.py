"""The request body as one model is sent it.

The canonical body is the client's, kept whole for every attempt; each attempt derives what
its model gets from it here, so every provider kind gets the same treatment and nothing in
``providers/`` needs to know about policy options.
"""

from __future__ import annotations

from typing import Any

from modelroute.policy.compiled import Model
from modelroute.request_fields import ANTHROPIC_FIELDS, OUTPUT_LIMIT_KEYS, whole_count


def outgoing_body(model: Model, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without the fields the model's policy drops, and with output limits written
    as whole floats (``292.0``) sent as integers, which strict upstreams insist on.

    Returns ``body`` itself when nothing changes (the common case costs two lookups)."""
    out = body
    if model.drop_params and not model.drop_params.isdisjoint(body):
        out = {key: value for key, value in body.items() if key not in model.drop_params}
    extra = out.get(ANTHROPIC_FIELDS)
    if model.drop_params and isinstance(extra, dict) and not model.drop_params.isdisjoint(extra):
        # The same names in a Messages request's own fields (top_k, thinking, service_tier).
        kept = {key: value for key, value in extra.items() if key not in model.drop_params}
        out = {**out, ANTHROPIC_FIELDS: kept}
    for key in OUTPUT_LIMIT_KEYS:
        value = out.get(key)
        if isinstance(value, float):
            count = whole_count(value)
            if count is not None:  # anything else was refused at the front door
                out = {**out, key: count}
    return out
