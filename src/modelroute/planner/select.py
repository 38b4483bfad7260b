"""Which route serves a request. Precedence, first that applies:

1. the body's ``model`` is a route name or alias;
2. the body's ``model`` is a model declared in the policy: routing is bypassed (``direct``);
3. the task label (``x-modelroute-task`` or ``metadata.task``) is a route name or alias;
4. the first route, in file order, whose ``match`` rules all hold;
5. ``defaults.route``.

Otherwise the request names nothing routable: ``UnknownRouteError``.
"""

from __future__ import annotations

from modelroute.errors import UnknownRouteError
from modelroute.planner.context import RequestContext
from modelroute.policy.compiled import MatchRule, Policy, Route


def rule_holds(rule: MatchRule, ctx: RequestContext) -> bool:
    if rule.models and ctx.requested not in rule.models:
        return False
    if rule.tasks and ctx.task not in rule.tasks:
        return False
    for key, allowed in rule.metadata:
        if ctx.metadata.get(key) not in allowed:
            return False
    if rule.min_prompt_tokens is not None and ctx.prompt_tokens < rule.min_prompt_tokens:
        return False
    if rule.max_prompt_tokens is not None and ctx.prompt_tokens > rule.max_prompt_tokens:
        return False
    if rule.tools is not None and ctx.has_tools != rule.tools:
        return False
    return rule.images is None or ctx.has_images == rule.images


def select_route(policy: Policy, ctx: RequestContext) -> tuple[Route | None, str]:
    """The route and how it was selected; ``(None, "model")`` means a direct model request."""
    requested = ctx.requested
    if requested is not None:
        route = policy.names.get(requested)
        if route is not None:
            return route, "name" if route.name == requested else "alias"
        if requested in policy.models:
            return None, "model"
    if ctx.task is not None:
        route = policy.names.get(ctx.task)
        if route is not None:
            return route, "task"
    for route in policy.matchers:
        assert route.match is not None
        if rule_holds(route.match, ctx):
            return route, "match"
    if policy.default_route is not None:
        return policy.routes[policy.default_route], "default"
    raise UnknownRouteError(requested or ctx.task or "", sorted(policy.names))
