"""Graders by name, as a dataset line's ``grader`` field names them.

A spec is a name, or an object with one key (the name) whose value holds the options::

    "exact"                         normalised exact match (SQuAD)
    "choice"   {"choice": {"letters": "ABCD"}}
    "numeric"  {"numeric": {"tolerance": 0.01, "relative": 0}}
    "regex"    {"regex": "PATTERN"}  (bare "regex": the reference is the pattern)
    {"json_field": "a.b"}           the JSON field at a dotted path
    {"judge": {"model": "big", "rubric": "..."}}   {"judge": "big"}   "judge" (default model)

Building a judge needs the engine, so ``Graders`` is given a judge factory; without one, a
judge spec is refused. Graders are built once per distinct spec and reused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from modelroute.grading.base import Grader
from modelroute.grading.choice import ChoiceMatch
from modelroute.grading.exact import ExactMatch
from modelroute.grading.json_field import JsonFieldMatch
from modelroute.grading.numeric import NumericMatch
from modelroute.grading.pattern import RegexMatch

GRADER_NAMES = ("exact", "regex", "numeric", "choice", "json_field", "judge")
# (model or None for the default judge model, rubric or None) -> a judge
JudgeFactory = Callable[[str | None, str | None], Grader]


class GraderSpecError(ValueError):
    """A grader spec that names no grader, or gives it options it does not take."""


def _options(name: str, value: Any, allowed: set[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise GraderSpecError(f"grader {name!r} takes an object of options, got {value!r}")
    unknown = set(value) - allowed
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise GraderSpecError(
            f"grader {name!r}: unknown option(s) {sorted(unknown)}; known: {known}"
        )
    return dict(value)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise GraderSpecError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise GraderSpecError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _regex(value: Any) -> Grader:
    if value is None:
        return RegexMatch()
    pattern = _text("regex pattern", value)
    try:
        return RegexMatch(pattern)
    except re.error as exc:
        raise GraderSpecError(f"invalid regex {pattern!r}: {exc}") from None


def _numeric(value: Any) -> Grader:
    opts = _options("numeric", value, {"tolerance", "relative"})
    return NumericMatch(
        _number("numeric tolerance", opts.get("tolerance", 1e-6)),
        _number("numeric relative", opts.get("relative", 0.0)),
    )


def _choice(value: Any) -> Grader:
    opts = _options("choice", value, {"letters"})
    try:
        return ChoiceMatch(opts.get("letters", "ABCDEFGHIJ"))
    except ValueError as exc:
        raise GraderSpecError(str(exc)) from None


def _json_field(value: Any) -> Grader:
    path = value.get("path") if isinstance(value, Mapping) else value
    if value is None:
        raise GraderSpecError('grader "json_field" needs a path: {"json_field": "a.b"}')
    try:
        return JsonFieldMatch(_text("json_field path", path))
    except ValueError as exc:
        raise GraderSpecError(str(exc)) from None


class Graders:
    """Builds (and caches) graders from specs; ``judges`` builds the LLM judge."""

    def __init__(self, judges: JudgeFactory | None = None) -> None:
        self.judges = judges
        self._built: dict[bytes, Grader] = {}

    def get(self, spec: Any) -> Grader:
        """The grader for ``spec``; raises ``GraderSpecError`` with what was wrong."""
        key = orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)
        grader = self._built.get(key)
        if grader is None:
            grader = self._built[key] = self._build(spec)
        return grader

    def _build(self, spec: Any) -> Grader:
        if isinstance(spec, str):
            name, value = spec, None
        elif isinstance(spec, Mapping) and len(spec) == 1:
            name, value = next(iter(spec.items()))
        else:
            raise GraderSpecError(
                f"a grader is a name or an object with one key (its name), got {spec!r}"
            )
        if name == "exact":
            _options("exact", value, set())
            return ExactMatch()
        if name == "regex":
            return _regex(value)
        if name == "numeric":
            return _numeric(value)
        if name == "choice":
            return _choice(value)
        if name == "json_field":
            return _json_field(value)
        if name == "judge":
            return self._judge(value)
        raise GraderSpecError(f"unknown grader {name!r}; known: {', '.join(GRADER_NAMES)}")

    def _judge(self, value: Any) -> Grader:
        if self.judges is None:
            raise GraderSpecError("the judge grader needs the engine (run it through `eval`)")
        if isinstance(value, str):
            value = {"model": value}
        opts = _options("judge", value, {"model", "rubric"})
        model = opts.get("model")
        rubric = opts.get("rubric")
        try:
            return self.judges(
                None if model is None else _text("judge model", model),
                None if rubric is None else _text("judge rubric", rubric),
            )
        except ValueError as exc:
            raise GraderSpecError(str(exc)) from None


def grader_spec(name: str, **options: Any) -> Any:
    """The spec of a grader with these options (how datasets with a default grader say it)."""
    return {name: options} if options else name
