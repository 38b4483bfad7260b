"""Normalised exact match, normalised as SQuAD's official evaluation does: lower case,
punctuation and the articles a/an/the removed, whitespace collapsed."""

from __future__ import annotations

import re
import string
from typing import Any

from modelroute.grading.base import Grade, GradingError, LocalGrader, references

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalise_answer(text: str) -> str:
    """SQuAD's ``normalize_answer``: lower, no punctuation, no articles, single spaces."""
    lowered = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", lowered).split())


class ExactMatch(LocalGrader):
    """1 when the normalised answer equals a normalised reference (any one of a list)."""

    name = "exact"

    def check(self, answer: str, reference: Any) -> Grade:
        got = normalise_answer(answer)
        wanted = [normalise_answer(str(r)) for r in references(reference) if r is not None]
        if not wanted:
            raise GradingError("exact match needs a reference answer")
        matched = got in wanted
        return Grade(1.0 if matched else 0.0, {"normalised": got, "expected": wanted})

    def agree(self, first: str, second: str) -> bool:
        """Whether two answers say the same thing once normalised (shadow agreement)."""
        return normalise_answer(first) == normalise_answer(second)
