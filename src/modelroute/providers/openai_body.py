"""The canonical body as an OpenAI Chat Completions request. Pure.

The canonical body is already Chat Completions; what a Messages request carried with no
Chat Completions field (``ANTHROPIC_FIELDS``, see ``request_fields``) is translated where
OpenAI has an equivalent and refused where it has none, never dropped in silence:

- ``thinking``: ``enabled`` becomes ``reasoning_effort`` by its budget (under 4,096 tokens
  ``low``, under 16,384 ``medium``, else ``high``); ``disabled`` sends nothing (the default);
  other kinds (``adaptive``, ...) have no equivalent.
- ``service_tier``: ``auto`` stays ``auto``, ``standard_only`` is ``default``.
- anything else (``top_k``, fields the gateway does not know): no equivalent.

A field the client also sent in its Chat Completions form keeps that value. Thinking blocks
of earlier turns are left out: only the Claude model that signed them can read them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelroute.request_fields import ANTHROPIC_FIELDS, THINKING_BLOCKS

_EFFORT = ((4096, "low"), (16384, "medium"))
_SERVICE_TIER = {"auto": "auto", "standard_only": "default"}


def _reasoning_effort(thinking: Any) -> str | None:
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "disabled":
        return None
    if kind != "enabled":
        raise LookupError(f"thinking of type {kind!r}")
    budget = thinking.get("budget_tokens")
    budget = budget if isinstance(budget, int) else 0
    return next((effort for limit, effort in _EFFORT if budget < limit), "high")


def _service_tier(tier: Any) -> str | None:
    if tier not in _SERVICE_TIER:
        raise LookupError(f"service_tier {tier!r}")
    return _SERVICE_TIER[tier]


# Messages field -> (Chat Completions field, translation; LookupError: no equivalent).
_EQUIVALENTS: dict[str, tuple[str, Callable[[Any], str | None]]] = {
    "thinking": ("reasoning_effort", _reasoning_effort),
    "service_tier": ("service_tier", _service_tier),
}


def openai_body(body: dict[str, Any], model: str) -> dict[str, Any]:
    """``body`` as ``model`` (an OpenAI-format model of the policy) is sent it; ``ValueError``
    names a field it cannot honour. Returns ``body`` itself when nothing is to change."""
    extra = body.get(ANTHROPIC_FIELDS)
    messages = body.get("messages")
    signed = isinstance(messages, list) and any(
        type(m) is dict and THINKING_BLOCKS in m for m in messages
    )
    if extra is None and not signed:
        return body
    out = {key: value for key, value in body.items() if key != ANTHROPIC_FIELDS}
    if signed:
        assert isinstance(messages, list)
        out["messages"] = [_unsigned(m) for m in messages]
    if extra is None:
        return out
    if not isinstance(extra, dict):
        raise ValueError(f"{ANTHROPIC_FIELDS}: must be an object of Messages API fields")
    for key, value in extra.items():
        target, translate = _EQUIVALENTS.get(key, (None, None))
        try:
            if target is None or translate is None:
                raise LookupError(f"field {key!r}")
            translated = translate(value)
        except LookupError as exc:
            raise ValueError(
                f"{key}: the Messages API's {exc.args[0]} has no equivalent in the Chat "
                f"Completions API of model {model!r}; serve the request with an "
                "Anthropic-format model"
            ) from None
        if translated is not None and target not in out:
            out[target] = translated
    return out


def _unsigned(message: Any) -> Any:
    if type(message) is not dict or THINKING_BLOCKS not in message:
        return message
    return {key: value for key, value in message.items() if key != THINKING_BLOCKS}
