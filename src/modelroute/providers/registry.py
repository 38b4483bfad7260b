"""Provider kind -> transport, for one router: the built-in wire formats, the kinds installed
packages declare (``kinds.py``), and providers passed in code, which win.

A kind is loaded only when the policy names it, so a broken plugin that no model uses cannot
stop a gateway; one that a model uses stops it at start-up with the reason, not at its first
request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from modelroute.errors import PolicyError, Problem
from modelroute.providers.anthropic import AnthropicProvider
from modelroute.providers.base import Provider
from modelroute.providers.http import Transport
from modelroute.providers.kinds import BUILTIN_KINDS, installed_kinds
from modelroute.providers.openai import OpenAIProvider

ProviderFactory = Callable[[], Provider]


def builtin_providers(transport: Transport) -> dict[str, Provider]:
    openai = OpenAIProvider(transport)
    return {
        "openai": openai,
        "simulator": openai,  # the simulator speaks the OpenAI wire format at its /v1
        "anthropic": AnthropicProvider(transport),
    }


def build_providers(
    transport: Transport,
    needed: Iterable[tuple[str, str]] = (),
    given: Mapping[str, Provider] | None = None,
    file: str = "<policy>",
) -> dict[str, Provider]:
    """The providers for ``needed`` (model name, kind) pairs. Raises ``PolicyError`` naming
    every model whose kind no provider serves, with the kinds that exist."""
    providers = builtin_providers(transport)
    providers.update(given or {})
    missing = [(name, kind) for name, kind in needed if kind not in providers]
    if not missing:
        return providers
    installed = installed_kinds()
    problems = []
    for name, kind in missing:
        if kind in providers:  # loaded for an earlier model
            continue
        entry = installed.get(kind)
        if entry is None:
            known = ", ".join(sorted({*BUILTIN_KINDS, *installed, *(given or {})}))
            problems.append(
                Problem(
                    file,
                    None,
                    None,
                    f"models.{name}.provider",
                    f"unknown provider kind {kind!r}",
                    f"known kinds: {known}; a package adds one under the "
                    "'modelroute.providers' entry point group",
                )
            )
            continue
        try:
            factory: ProviderFactory = entry.load()
            providers[kind] = factory()
        except Exception as exc:  # a third party's code: report it, whatever it raised
            problems.append(
                Problem(
                    file,
                    None,
                    None,
                    f"models.{name}.provider",
                    f"provider kind {kind!r} ({entry.value}) failed to load: "
                    f"{type(exc).__name__}: {exc}",
                )
            )
    if problems:
        raise PolicyError(problems)
    return providers
