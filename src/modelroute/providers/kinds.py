"""Which provider kinds exist: the built-in wire formats and those installed packages declare.

A package adds a kind by declaring an entry point in the ``modelroute.providers`` group, e.g.
in its ``pyproject.toml``::

    [project.entry-points."modelroute.providers"]
    acme = "acme_modelroute:AcmeProvider"

The object named is a factory: called with no arguments, it returns a ``Provider``
(``providers/base.py``). Only the names are read here (standard library only, so the policy
loader can list every kind a ``provider:`` field may name); ``registry.py`` loads the code,
and only when a policy uses the kind.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

ENTRY_POINT_GROUP = "modelroute.providers"
BUILTIN_KINDS = ("openai", "anthropic", "simulator")


def installed_kinds() -> dict[str, EntryPoint]:
    """Kinds declared by installed packages, read from their metadata now (never cached: a
    package installed since is seen). A built-in kind cannot be taken over this way."""
    found = entry_points(group=ENTRY_POINT_GROUP)
    return {ep.name: ep for ep in found if ep.name not in BUILTIN_KINDS}


def known_kinds() -> tuple[str, ...]:
    """Every kind a policy may name without passing providers in code: built-in first."""
    return (*BUILTIN_KINDS, *sorted(installed_kinds()))
