"""Comparing a shadow's answer with the one the client got: a score in [0, 1].

- ``agreement``: 1 when the two answers are the same once normalised (case, surrounding
  whitespace and punctuation, runs of whitespace), else 0; for classification and
  extraction routes, where the answer is a label or a value.
- a judge model: asked whether the shadow's answer (the candidate) is as good as the client's
  (the baseline) for the same request; the score is its probability of "yes".
"""

from __future__ import annotations

import json
import re
from typing import Any

from modelroute.confidence import verifier_score
from modelroute.types import Completion

_STRIP = " \t\n\r.,;:!?\"'`"
_SPACES = re.compile(r"\s+")
JUDGE_OUTPUT_TOKENS = 1
# What the judge's instructions add to the request and the two answers, in tokens.
JUDGE_OVERHEAD_TOKENS = 120


def _normalised(text: str) -> str:
    return _SPACES.sub(" ", text.strip(_STRIP).lower())


def normalised_match(answer: str, expected: str) -> bool:
    return _normalised(answer) == _normalised(expected)


def agreement(candidate: str, baseline: str) -> float:
    return 1.0 if normalised_match(candidate, baseline) else 0.0


def _question(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def judge_request(
    body: dict[str, Any], baseline: str, candidate: str, *, logprobs: bool
) -> dict[str, Any]:
    """A yes/no request asking a judge whether ``candidate`` is as good as ``baseline``;
    with ``logprobs`` (a judge that reports them) its score is graded, else 1 or 0."""
    request: dict[str, Any] = {
        "messages": [
            {
                "role": "system",
                "content": "You compare two answers to the same request. "
                "Reply with one word: yes or no.",
            },
            {
                "role": "user",
                "content": f"Request:\n{_question(body)}\n\nBaseline answer:\n{baseline}\n\n"
                f"Candidate answer:\n{candidate}\n\n"
                "Is the candidate answer as correct and as complete as the baseline answer?",
            },
        ],
        "max_tokens": JUDGE_OUTPUT_TOKENS,
        "temperature": 0,
    }
    if logprobs:
        request |= {"logprobs": True, "top_logprobs": 5}
    return request


def judge_score(verdict: Completion) -> float:
    return verifier_score(verdict)
