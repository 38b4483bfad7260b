"""JSON field match: parse the answer's JSON and compare the value at a dotted path.

The answer's JSON is the whole answer, else its first fenced code block, else the first
JSON object or array inside it. The path's parts are keys, or indexes into lists
(``items.0.name``). The expected value is the reference's own value at the path when the
reference is an object holding it, else the reference itself. Values compare as JSON does,
except that numbers compare by value (1 == 1.0) and strings ignore case and surrounding space.
"""

from __future__ import annotations

import json
import re
from typing import Any

from modelroute.grading.base import Grade, GradingError, LocalGrader

_FENCE = re.compile(r"```[a-zA-Z]*\s*\n(.*?)```", re.S)
_MISSING = object()


def answer_json(text: str) -> Any:
    """The JSON value an answer holds, or ``_MISSING``."""
    stripped = text.strip()
    candidates = [stripped, *(block.strip() for block in _FENCE.findall(text))]
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    decoder = json.JSONDecoder()
    for start, char in enumerate(text):
        if char in "{[":
            try:
                return decoder.raw_decode(text, start)[0]
            except ValueError:
                continue
    return _MISSING


def at_path(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif (
            isinstance(value, list)
            and part.lstrip("-").isdigit()
            and -len(value) <= int(part) < len(value)
        ):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def same_value(got: Any, expected: Any) -> bool:
    if isinstance(got, str) and isinstance(expected, str):
        return got.strip().casefold() == expected.strip().casefold()
    numbers = (int, float)
    if (
        isinstance(got, numbers)
        and isinstance(expected, numbers)
        and not isinstance(got, bool)
        and not isinstance(expected, bool)
    ):
        return float(got) == float(expected)
    if isinstance(got, list) and isinstance(expected, list):
        return len(got) == len(expected) and all(map(same_value, got, expected))
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(same_value(got[k], expected[k]) for k in got)
    return type(got) is type(expected) and bool(got == expected)


class JsonFieldMatch(LocalGrader):
    name = "json_field"

    def __init__(self, path: str) -> None:
        parts = tuple(path.split("."))
        if not path or any(not p for p in parts):
            raise ValueError(f"a JSON field path is dotted keys like 'a.b', got {path!r}")
        self.path = path
        self._parts = parts

    def _expected(self, reference: Any) -> Any:
        if isinstance(reference, dict):
            inside = at_path(reference, self._parts)
            if inside is not _MISSING:
                return inside
        return reference

    def check(self, answer: str, reference: Any) -> Grade:
        if reference is None:
            raise GradingError("a JSON field match needs a reference value")
        expected = self._expected(reference)
        parsed = answer_json(answer)
        if parsed is _MISSING:
            return Grade(0.0, {"path": self.path, "found": None, "why": "no JSON in the answer"})
        got = at_path(parsed, self._parts)
        if got is _MISSING:
            return Grade(0.0, {"path": self.path, "found": None, "why": "path not in the JSON"})
        ok = same_value(got, expected)
        return Grade(1.0 if ok else 0.0, {"path": self.path, "found": got, "expected": expected})
