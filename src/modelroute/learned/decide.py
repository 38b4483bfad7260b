"""From a request to a Decision, the one path live traffic and simulation share.

``decide(ctx, text, policy, stats)`` selects the route as the planner will; when it is a
learned route, the route's router (loaded with the policy) predicts each model's score for
``text`` and the planner orders by them. Other routes are planned exactly as ``plan`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from modelroute.planner.context import RequestContext
from modelroute.planner.decision import Decision
from modelroute.planner.plan import plan
from modelroute.planner.select import select_route
from modelroute.planner.stats import EMPTY_STATS, StatsSnapshot
from modelroute.policy.compiled import Policy, Route


def route_scores(route: Route | None, text: str, task: str | None) -> Mapping[str, float] | None:
    """The route's predicted score per model for ``text``; None for a route that is not
    learned."""
    if route is None or route.learned is None:
        return None
    return route.learned.scorer.scores(text, task)


def decide(
    ctx: RequestContext,
    text: str | Callable[[], str],
    policy: Policy,
    stats: StatsSnapshot = EMPTY_STATS,
) -> Decision:
    """Plan ``ctx`` under ``policy``; a learned route scores ``text`` (the prompt, or a
    function giving it, called only when the selected route is learned) first."""
    route, _ = select_route(policy, ctx)
    scores = None
    if route is not None and route.learned is not None:
        prompt = text() if callable(text) else text
        scores = route.learned.scorer.scores(prompt, ctx.task)
    return plan(ctx, policy, stats, scores)


def prompt_text(body: Mapping[str, Any]) -> str:
    """The text a learned router reads: the last user message (OpenAI or Anthropic shape),
    its text parts joined; the Responses API's ``input`` string as is."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raw = body.get("input")
        return raw if isinstance(raw, str) else ""
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p["text"] for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str)
        ]
        return "\n".join(parts)
    return ""
