"""Comparing a shadow's answer with the one the client got: a score in [0, 1], with the
graders of ``modelroute.grading``.

- ``agreement``: 1 when the two answers are the same once normalised (``ExactMatch``: case,
  punctuation, articles and runs of whitespace ignored), else 0; for classification and
  extraction routes, where the answer is a label or a value.
- a judge model: the grading judge's prompt, with the client's answer as the baseline and
  the shadow's as the answer to grade; its 0-10 verdict becomes the score. A reply that is
  not a verdict is a grading failure, never a score.

The judge is sent here, the way every shadow call is (``direct.py``), and not through the
router as an evaluation's judge is: a shadow's judging makes no request record either.
"""

from __future__ import annotations

from typing import Any

from modelroute.grading import Against, ExactMatch, JudgePrompt, parse_verdict
from modelroute.grading.judge import MAX_SCORE, question_text

_EXACT = ExactMatch()
# The judge's reply is one short JSON object; what a judge is allowed to write, and what its
# reservation in the daily budget counts.
JUDGE_OUTPUT_TOKENS = 300
# What the judge's instructions add to the request and the two answers, in tokens.
JUDGE_OVERHEAD_TOKENS = 250


def agreement(candidate: str, baseline: str) -> float:
    return 1.0 if _EXACT.agree(candidate, baseline) else 0.0


def judge_request(
    prompt: JudgePrompt, messages: Any, baseline: str, candidate: str
) -> dict[str, Any]:
    """Asks a judge whether ``candidate`` is at least as good as ``baseline``."""
    asked = question_text(messages if isinstance(messages, list) else [])
    content = prompt.render(asked, candidate, Against.BASELINE, baseline)
    return {
        "messages": [{"role": "user", "content": content}],
        "temperature": 0,
        "max_tokens": JUDGE_OUTPUT_TOKENS,
    }


def judge_score(reply: str) -> tuple[float, dict[str, Any]]:
    """The score and its evidence; raises ``GradingError`` for a reply that is no verdict."""
    score, reason = parse_verdict(reply)
    return score / MAX_SCORE, {"judge_score": score, "reason": reason}
