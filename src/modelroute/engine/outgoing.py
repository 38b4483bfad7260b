"""The request body as one model is sent it.

The canonical body is the client's, kept whole for every attempt; each attempt derives what
its model gets from it here, so every provider kind gets the same treatment and nothing in
``providers/`` needs to know about policy options.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from modelroute.policy.compiled import Model
from modelroute.request_fields import (
    ANTHROPIC_FIELDS,
    GATEWAY_PREFIX,
    OUTPUT_LIMIT_KEYS,
    RESPONSES_NATIVE_ONLY,
    RESPONSES_PREVIOUS,
    RESPONSES_REQUEST,
    whole_count,
)


def outgoing_body(model: Model, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without the fields the model's policy drops and the metadata routing read,
    and with output limits written as whole floats (``292.0``) sent as integers, which
    strict upstreams insist on.

    Returns ``body`` itself when nothing changes (the common case costs a few lookups)."""
    out = body
    if model.drop_params and not model.drop_params.isdisjoint(body):
        out = {key: value for key, value in body.items() if key not in model.drop_params}
    if model.routing_metadata and "metadata" in out:
        out = _without_routing_metadata(model.routing_metadata, out)
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
    if RESPONSES_REQUEST in out:
        out = _responses_request(model, out)
    return out


def _responses_request(model: Model, body: dict[str, Any]) -> dict[str, Any]:
    """A Responses API request: kept, with the same fields dropped, for a model that serves
    the Responses API (the one whose upstream keeps the previous response is sent the
    request that names it, ``RESPONSES_PREVIOUS``); left out (the Chat Completions
    translation goes) for any other."""
    out = {
        key: value
        for key, value in body.items()
        if key not in (RESPONSES_REQUEST, RESPONSES_NATIVE_ONLY, RESPONSES_PREVIOUS)
    }
    request = body[RESPONSES_REQUEST]
    if "responses" not in model.capabilities or not isinstance(request, dict):
        return out
    previous = body.get(RESPONSES_PREVIOUS)
    if _names_previous(previous, model):
        request = previous.get("request", request)
    if model.drop_params and not model.drop_params.isdisjoint(request):
        request = {key: value for key, value in request.items() if key not in model.drop_params}
    if model.routing_metadata and "metadata" in request:
        request = _without_routing_metadata(model.routing_metadata, request)
    out[RESPONSES_REQUEST] = request
    return out


def forget_previous(body: dict[str, Any], model: Model) -> bool:
    """``model``'s upstream said it does not keep the previous response its request named:
    from now on, this request's body sends it the whole conversation instead (every copy of
    the body: they share the marker). Whether it was named to it until now (once only)."""
    previous = body.get(RESPONSES_PREVIOUS)
    if not _names_previous(previous, model):
        return False
    previous["forgotten"] = True
    return True


def _names_previous(previous: object, model: Model) -> TypeGuard[dict[str, Any]]:
    return (
        isinstance(previous, dict)
        and previous.get("model") == model.name
        and not previous.get("forgotten")
    )


def _without_routing_metadata(routing: frozenset[str], body: dict[str, Any]) -> dict[str, Any]:
    """The keys routing consumed stay here: an upstream has no use for them, and OpenAI
    refuses metadata it would not store. An emptied ``metadata`` is left out whole."""
    metadata = body["metadata"]
    if not isinstance(metadata, dict):
        return body  # refused at the front door; a library caller's own business
    kept = {
        key: value
        for key, value in metadata.items()
        if key not in routing and not key.startswith(GATEWAY_PREFIX)
    }
    if len(kept) == len(metadata):
        return body
    if kept:
        return {**body, "metadata": kept}
    return {key: value for key, value in body.items() if key != "metadata"}
