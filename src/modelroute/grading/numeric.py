"""Numeric answers: the final number of an answer, compared within a tolerance.

Where the answer says which number is final, that one wins, in this order: GSM8K's
``#### 42``, ``\\boxed{42}``, a JSON ``"answer": 42``, "the answer is 42" / "Answer: 42";
otherwise the last number in the text. Thousands separators (``1,234``), a currency sign,
a trailing ``%`` and simple fractions (``3/4``) are read; a reference is read the same way.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any

from modelroute.grading.base import Grade, GradingError, LocalGrader, references

_NUMBER = r"-?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|-?\$?\.\d+"
_FINAL_MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("####", re.compile(rf"####\s*({_NUMBER})")),
    ("boxed", re.compile(rf"\\boxed\{{\s*({_NUMBER})")),
    ("json_answer", re.compile(rf"\"answer\"\s*:\s*\"?\s*({_NUMBER})")),
    ("answer_is", re.compile(rf"(?i:answer)\s*(?:is|:|=)\s*:?\s*\**\s*({_NUMBER})")),
)
_ANY_NUMBER = re.compile(rf"(?<![\w.])({_NUMBER})")


def parse_number(text: str) -> float | None:
    """One number as written (``-1,234.5``, ``$3``, ``3/4``); ``None`` if it is not one."""
    cleaned = text.strip().replace(",", "").replace("$", "").rstrip("%")
    try:
        value = float(Fraction(cleaned)) if "/" in cleaned else float(cleaned)
    except (ValueError, ZeroDivisionError):
        return None
    return value if math.isfinite(value) else None


def final_number(text: str) -> tuple[float, str] | None:
    """The answer's final number and how it was found, or ``None`` when it has none."""
    for how, marker in _FINAL_MARKERS:
        found = marker.findall(text)
        if found:
            value = parse_number(found[-1])
            if value is not None:
                return value, how
    for raw in reversed(_ANY_NUMBER.findall(text)):
        value = parse_number(raw)
        if value is not None:
            return value, "last_number"
    return None


def _reference_number(reference: Any) -> float:
    if isinstance(reference, int | float) and not isinstance(reference, bool):
        return float(reference)
    found = final_number(str(reference)) if reference is not None else None
    if found is None:
        raise GradingError(f"the reference {reference!r} holds no number")
    return found[0]


class NumericMatch(LocalGrader):
    """1 when the final number is within ``tolerance`` (absolute) of the reference, or
    within ``relative`` times the reference's size, whichever is wider."""

    name = "numeric"

    def __init__(self, tolerance: float = 1e-6, relative: float = 0.0) -> None:
        if tolerance < 0 or relative < 0:
            raise ValueError("numeric tolerances must not be negative")
        self.tolerance = tolerance
        self.relative = relative

    def check(self, answer: str, reference: Any) -> Grade:
        expected = [_reference_number(r) for r in references(reference)]
        found = final_number(answer)
        if found is None:
            return Grade(0.0, {"extracted": None, "expected": expected, "how": "no number"})
        value, how = found
        ok = any(abs(value - e) <= max(self.tolerance, self.relative * abs(e)) for e in expected)
        return Grade(1.0 if ok else 0.0, {"extracted": value, "expected": expected, "how": how})
