"""Regular-expression match: the answer contains a match of the pattern (``re.search``).

The pattern is the grader's own (``{"regex": "..."}``) or, for a bare ``"regex"``, the
reference; anchor it (``^...$``) or use ``(?i)`` in the pattern for other behaviour.
"""

from __future__ import annotations

import re
from typing import Any

from modelroute.grading.base import Grade, GradingError, LocalGrader


class RegexMatch(LocalGrader):
    name = "regex"

    def __init__(self, pattern: str | None = None) -> None:
        self.pattern = re.compile(pattern, re.S) if pattern is not None else None
        self.needs_reference = pattern is None

    def check(self, answer: str, reference: Any) -> Grade:
        pattern = self.pattern
        if pattern is None:
            if not isinstance(reference, str):
                raise GradingError("a bare 'regex' grader takes its pattern from the reference")
            try:
                pattern = re.compile(reference, re.S)
            except re.error as exc:
                raise GradingError(f"the reference is not a valid regex: {exc}") from None
        found = pattern.search(answer)
        detail = {"pattern": pattern.pattern, "match": found.group(0) if found else None}
        return Grade(1.0 if found else 0.0, detail)
