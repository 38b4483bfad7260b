"""Turn pydantic validation errors into located problems with useful hints."""

from __future__ import annotations

import difflib
import types
import typing
from enum import Enum
from typing import Any

from pydantic import BaseModel, ValidationError

from modelroute.errors import Problem
from modelroute.policy.schema import PolicySpec
from modelroute.policy.source import Path, Source


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types an annotation may hold (Annotated/Optional/Union removed)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_unwrap(arg))
        return out
    return [annotation]


def _tag_of(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("kind")
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return str(args[0]) if args else None


def _step(current: list[Any], part: str | int) -> tuple[list[Any], bool]:
    """Follow one location step through the schema. Returns (next types, consumed?)."""
    nxt: list[Any] = []
    for tp in current:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is not None:
                nxt.extend(_unwrap(field.annotation))
            continue
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is dict and args:
            nxt.extend(_unwrap(args[1]))
        elif origin is list and args:
            nxt.extend(_unwrap(args[0]))
    if nxt:
        return nxt, True
    # A discriminated union puts the tag into the location: pick the tagged member.
    tagged = [
        tp
        for tp in current
        if isinstance(tp, type) and issubclass(tp, BaseModel) and _tag_of(tp) == part
    ]
    return tagged, bool(tagged)


def allowed_keys(loc: Path) -> list[str]:
    """Field names valid at ``loc`` (the mapping that holds the offending key)."""
    current: list[Any] = [PolicySpec]
    for part in loc:
        current, ok = _step(current, part)
        if not ok:
            return []
    keys: list[str] = []
    for tp in current:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            keys.extend(tp.model_fields)
    return keys


def choices_at(loc: Path) -> list[str]:
    """The values an enum-typed field at ``loc`` accepts (empty when it is not one)."""
    current: list[Any] = [PolicySpec]
    for part in loc:
        current, ok = _step(current, part)
        if not ok:
            return []
    return [
        str(member.value)
        for tp in current
        if isinstance(tp, type) and issubclass(tp, Enum)
        for member in tp
    ]


def clean_loc(loc: tuple[int | str, ...]) -> Path:
    """Drop discriminator tags pydantic inserts, so the path matches the YAML."""
    out: list[str | int] = []
    current: list[Any] = [PolicySpec]
    for part in loc:
        before = current
        current, ok = _step(current, part)
        if not ok:
            out.append(part)
            continue
        tag_step = any(
            isinstance(tp, type) and issubclass(tp, BaseModel) and _tag_of(tp) == part
            for tp in current
        ) and not any(
            isinstance(tp, type) and issubclass(tp, BaseModel) and str(part) in tp.model_fields
            for tp in before
        )
        if not tag_step:
            out.append(part)
    return tuple(out)


_TYPE_WORDS = {
    "float_parsing": "a number",
    "float_type": "a number",
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping (key: value lines)",
    "model_type": "a mapping (key: value lines)",
    "model_attributes_type": "a mapping (key: value lines)",
    "list_type": "a list (lines starting with '- ')",
}


_BOUNDS = {
    "greater_than_equal": ">=",
    "greater_than": ">",
    "less_than_equal": "<=",
    "less_than": "<",
}
_BOUND_HINTS = {
    "prices": "prices are USD per million tokens: 0 or more (0 for a self-hosted model)",
    "min_quality": "quality is a fraction between 0 and 1, e.g. 0.9",
    "threshold": "a confidence threshold is a probability between 0 and 1",
    "context_window": "the model's context window in tokens, e.g. 128000",
    "max_attempts": "max_attempts counts every attempt on a model, the first included: "
    "1 means no retry",
    "sample": "sample is the share of the route's successful requests shadowed: more than 0, "
    "at most 1 (0.05 is 5%)",
    "max_usd_per_day": "the most this route's shadows may spend per UTC day, in USD "
    "(0 pauses them)",
}


def _describe(err: Any, source: Source) -> Problem:
    kind = err["type"]
    loc = clean_loc(err["loc"])
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = allowed_keys(loc[:-1])
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint: str | None = None
        if close:
            hint = f"did you mean {close[0]!r}?"
        elif allowed:
            hint = "allowed keys here: " + ", ".join(sorted(allowed))
        return source.problem(loc, f"unknown key {key!r}", hint, key=True)
    if kind == "missing":
        return source.problem(
            loc,
            f"missing required key {str(loc[-1])!r}",
            f"add '{loc[-1]}:' under '{'.'.join(map(str, loc[:-1])) or 'the top level'}'",
            key=True,
        )
    if kind in _TYPE_WORDS:
        got = err.get("input")
        return source.problem(
            loc,
            f"expected {_TYPE_WORDS[kind]}, got {got!r}",
            "numbers are written without quotes or units, e.g. 0.15",
        )
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        return source.problem(
            loc,
            err["msg"],
            "strategy 'kind' is one of: fixed, cheapest_qualified, cascade, learned",
        )
    if kind == "string_pattern_mismatch" and loc and loc[-1] == "api_key":
        return source.problem(
            loc,
            "an API key must be a reference like 'env:OPENAI_API_KEY', never the key itself",
            "put the key in an environment variable and write env:NAME here",
        )
    if kind == "too_short":
        what = str(loc[-1]) if loc else "list"
        return source.problem(
            loc,
            f"'{what}' is empty",
            f"declare at least {err.get('ctx', {}).get('min_length', 1)} entry here; see examples/",
        )
    if kind in _BOUNDS:
        bound = err.get("ctx", {})
        limit = next(iter(bound.values()), None)
        field = str(loc[-1]) if loc else "value"
        return source.problem(
            loc,
            f"{field} must be {_BOUNDS[kind]} {limit}, got {err.get('input')!r}",
            _BOUND_HINTS.get(loc[-2] if len(loc) > 1 and loc[-2] == "prices" else field),
        )
    if kind == "enum":
        close = difflib.get_close_matches(str(err["input"]), choices_at(loc), n=1, cutoff=0.6)
        return source.problem(
            loc,
            f"{err['input']!r} is not allowed",
            f"did you mean {close[0]!r}?" if close else err["msg"].replace("Input", "value"),
        )
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return source.problem(
        loc, f"{message} (got {err.get('input')!r})" if kind != "value_error" else message
    )


def problems_from(exc: ValidationError, source: Source) -> list[Problem]:
    return [_describe(err, source) for err in exc.errors(include_url=False)]
