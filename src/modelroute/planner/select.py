"""Which route serves a request. Precedence, first that applies:

1. the body's ``model`` is a route name or alias;
2. the body's ``model`` is a model declared in the policy: routing is bypassed (``direct``);
3. the task label (``x-modelroute-task`` or ``metadata.task``) is a route name or alias;
4. the first route, in file order, whose ``match`` rules all hold;
5. ``defaults.route``.

Otherwise the request names nothing routable: ``UnknownRouteError``.
"""

from __future__ import annotations

from collections.abc import Mapping

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
    if policy.matchers:
        matched = _first_match(policy.matchers, ctx)
        if matched is not None:
            return matched, "match"
    if policy.default_route is not None:
        return policy.routes[policy.default_route], "default"
    raise UnknownRouteError(requested or ctx.task or "", sorted(policy.names))


def _first_match(matchers: tuple[Route, ...], ctx: RequestContext) -> Route | None:
    """The first route whose rule holds: ``rule_holds`` inline, with the request's fields
    read once (a policy's rules are checked in turn for every request that names no route;
    a test holds this loop to ``rule_holds``)."""
    requested, task, metadata = ctx.requested, ctx.task, ctx.metadata
    tokens, tools, images = ctx.prompt_tokens, ctx.has_tools, ctx.has_images
    for route in matchers:
        rule = route.match
        assert rule is not None
        if rule.models and requested not in rule.models:
            continue
        if rule.tasks and task not in rule.tasks:
            continue
        if rule.metadata and not _metadata_holds(rule.metadata, metadata):
            continue
        if rule.min_prompt_tokens is not None and tokens < rule.min_prompt_tokens:
            continue
        if rule.max_prompt_tokens is not None and tokens > rule.max_prompt_tokens:
            continue
        if rule.tools is not None and tools != rule.tools:
            continue
        if rule.images is None or images == rule.images:
            return route
    return None


def _metadata_holds(
    required: tuple[tuple[str, frozenset[str]], ...], metadata: Mapping[str, str]
) -> bool:
    # A loop, not all() over a generator: no generator built for every rule checked.
    for key, allowed in required:  # noqa: SIM110
        if metadata.get(key) not in allowed:
            return False
    return True
