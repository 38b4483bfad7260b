"""Fields of the canonical request body that several layers read the same way.

Standard library only: the front doors, the planner's features, the engine and the providers
all import it, so one rule decides what counts as, say, a valid ``max_tokens``.
"""

from __future__ import annotations

# OpenAI's newer name first: when a client sends both, it is the one the upstream honours.
OUTPUT_LIMIT_KEYS = ("max_completion_tokens", "max_tokens")

# What routing reads from a request besides the body's standard fields. The headers' names
# start with this prefix; in ``metadata`` a limit may use its header name or its short name.
GATEWAY_PREFIX = "x-modelroute-"
TASK_HEADER = "x-modelroute-task"
TASK_KEY = "task"  # in metadata
SESSION_HEADER = "x-modelroute-session-id"  # session affinity (``modelroute.sessions``)
SESSION_KEY = "session_id"  # in metadata
LIMIT_HEADERS = {
    "x-modelroute-max-cost-usd": "max_cost_usd",
    "x-modelroute-max-latency-ms": "max_latency_ms",
    "x-modelroute-min-quality": "min_quality",
}
# The metadata keys routing consumes whatever the policy says (a route's match rules may
# read more): never sent upstream unless a model's policy asks for it.
ROUTING_METADATA_KEYS = frozenset({TASK_KEY, SESSION_KEY, *LIMIT_HEADERS, *LIMIT_HEADERS.values()})
# The largest count taken. Past 2**53 a JSON number no longer names one integer in every
# client (JavaScript's Number.MAX_SAFE_INTEGER), and past 2**63 it cannot even be written
# back out in an error body; no model's limit comes anywhere near it.
MAX_COUNT = 2**53 - 1


def whole_count(value: object) -> int | None:
    """``value`` as a positive whole number, or ``None`` when it is not one.

    JSON has a single number type, and some clients (JavaScript ones, or a value that went
    through a float on the way) send ``292.0`` for 292: the same count, so it is accepted.
    ``292.5``, ``0``, ``-1``, ``true``, ``"292"`` and ``1e300`` are not counts.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value <= MAX_COUNT else None
    if isinstance(value, float) and value.is_integer() and 0 < value <= MAX_COUNT:
        return int(value)
    return None


# Fields of a Messages request with no Chat Completions counterpart (thinking, top_k,
# service_tier, and any the gateway does not know), kept as the client sent them under this
# key of the canonical body: Anthropic-format upstreams get them unchanged, OpenAI-format ones
# their equivalents, or a 400 for those that have none (``providers.openai_body``).
ANTHROPIC_FIELDS = "anthropic"
# An assistant message's thinking blocks (Anthropic's, signed), under this key of the
# canonical message, so that a tool loop can send them back to the model that wrote them.
THINKING_BLOCKS = "thinking_blocks"

# A Responses API request (``POST /v1/responses``) is routed as its Chat Completions
# translation, and carries the request as the client sent it under this key of the canonical
# body: a model whose upstream serves the Responses API (capability ``responses``) is sent it
# as is, any other the translation (``engine.outgoing`` removes both keys for it).
RESPONSES_REQUEST = "responses_request"
# Why the translation falls short (a built-in tool, ``previous_response_id``, ...): when this
# list is not empty, only a model with the ``responses`` capability may serve the request.
RESPONSES_NATIVE_ONLY = "responses_native_only"
# A request continuing a stored response that one model's upstream answered and kept itself:
# ``{"model": <that model's name>, "request": <the request with previous_response_id>}``.
# That model is sent this request (the upstream holds the conversation); any other the
# whole conversation under ``RESPONSES_REQUEST`` (``engine.outgoing`` removes this key).
RESPONSES_PREVIOUS = "responses_previous"
