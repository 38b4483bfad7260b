"""The answer as the client asked for it: the router may ask upstream for more than the
client did (logprobs, for a cascade's confidence); the client sees only what it asked for."""

from __future__ import annotations

from typing import Any

from modelroute.types import Completion


def client_view(completion: Completion, body: dict[str, Any]) -> Completion:
    """The logprobs the client asked for: none, or each token's alternatives cut to its
    ``top_logprobs`` (the router asks on its own account for a cascade's confidence)."""
    choices = completion.body.get("choices")
    if not isinstance(choices, list) or not any(
        isinstance(c, dict) and c.get("logprobs") for c in choices
    ):
        return completion
    if not body.get("logprobs"):
        view = [{**c, "logprobs": None} if isinstance(c, dict) else c for c in choices]
    else:
        top = body.get("top_logprobs")
        view = [_top_cut(c, top if isinstance(top, int) else 0) for c in choices]
    completion.body = {**completion.body, "choices": view}
    return completion


def _top_cut(choice: Any, n: int) -> Any:
    content = (choice.get("logprobs") or {}).get("content") if isinstance(choice, dict) else None
    if not isinstance(content, list) or all(
        len(t.get("top_logprobs") or ()) <= n for t in content if isinstance(t, dict)
    ):
        return choice
    cut = [
        {**t, "top_logprobs": t["top_logprobs"][:n]}
        if isinstance(t, dict) and t.get("top_logprobs")
        else t
        for t in content
    ]
    return {**choice, "logprobs": {**choice["logprobs"], "content": cut}}
