"""Multiple choice: the letter an answer chose (A-J by default), compared with the key.

The chosen letter is found in this order: an answer that is only a letter (``C``, ``(C)``,
``C.``, ``**C**``); the last "answer is (C)" / "Answer: C"; an answer opening with ``C.`` or
``C)``; the last parenthesised letter ``(C)``. Letters are upper case: a lower-case "a" is an
article, not a choice. No letter found scores 0 and says so in the evidence.
"""

from __future__ import annotations

import re
from typing import Any

from modelroute.grading.base import Grade, GradingError, LocalGrader, references

DEFAULT_LETTERS = "ABCDEFGHIJ"


class ChoiceMatch(LocalGrader):
    name = "choice"

    def __init__(self, letters: str = DEFAULT_LETTERS) -> None:
        if not letters or not letters.isalpha() or not letters.isupper():
            raise ValueError(f"choice letters must be upper-case letters, got {letters!r}")
        cls = f"[{re.escape(letters)}]"
        self.letters = letters
        self._patterns: tuple[tuple[str, re.Pattern[str]], ...] = (
            ("only_letter", re.compile(rf"^[\s*_`(\[]*({cls})[\s*_`)\].:]*$")),
            ("answer_is", re.compile(rf"(?i:answer)\s*(?:is|:)?\s*:?\s*[*_`]*\(?({cls})\b")),
            ("leading", re.compile(rf"^[\s*_`]*\(?({cls})[.)]\s")),
            ("parenthesised", re.compile(rf"\(({cls})\)")),
        )

    def chosen(self, answer: str) -> tuple[str, str] | None:
        """The letter the answer chose and how it was found, or ``None``."""
        for how, pattern in self._patterns:
            found = pattern.findall(answer)
            if found:
                return found[-1], how
        return None

    def _key(self, reference: Any) -> str:
        text = str(reference).strip() if reference is not None else ""
        found = self.chosen(text)
        if found is None:
            raise GradingError(f"the reference {reference!r} is not a choice among {self.letters}")
        return found[0]

    def check(self, answer: str, reference: Any) -> Grade:
        keys = [self._key(r) for r in references(reference)]
        found = self.chosen(answer)
        if found is None:
            return Grade(0.0, {"chosen": None, "expected": keys, "how": "no choice letter found"})
        letter, how = found
        return Grade(
            1.0 if letter in keys else 0.0, {"chosen": letter, "expected": keys, "how": how}
        )
