"""Confidence signals: a number in [0, 1] per answer, compared with the route's threshold.

- ``logprobs``: the geometric mean probability of the answer's tokens, exp(mean logprob).
- ``label_probability``: for classifiers. The answer must be one of the declared labels
  (case and surrounding punctuation ignored); its confidence is the joint probability of its
  tokens, exp(sum logprob). An answer outside the labels scores 0.
- ``validator``: 1 if the answer passes (``json``: parses as JSON; ``regex:PATTERN``: the whole
  answer matches), else 0.
- ``verifier``: another model is asked whether the answer is correct; the score is its
  probability of "yes" (from logprobs when it reports them, else 1 or 0 from its text).

Missing evidence (no logprobs where they are needed) scores 0: when in doubt, escalate.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from modelroute.policy.compiled import ConfidenceRule
from modelroute.types import Completion

_STRIP = " \t\n\r.,;:!?\"'`"


def needs_logprobs(rule: ConfidenceRule) -> bool:
    return rule.signal in ("logprobs", "label_probability")


def _logprob_mean(c: Completion) -> float:
    lps = c.token_logprobs
    if not lps:
        return 0.0
    return math.exp(sum(lps) / len(lps))


def _label(c: Completion, labels: tuple[str, ...]) -> float:
    answer = (c.content or "").strip(_STRIP).lower()
    if answer not in {label.lower() for label in labels}:
        return 0.0
    if not c.token_logprobs:
        return 0.0
    return math.exp(sum(c.token_logprobs))


def _validate(c: Completion, validator: str | None) -> float:
    text = c.content or ""
    if validator == "json":
        try:
            json.loads(text)
        except ValueError:
            return 0.0
        return 1.0
    if validator and validator.startswith("regex:"):
        return 1.0 if re.fullmatch(validator[len("regex:") :], text.strip(), re.S) else 0.0
    return 0.0


def confidence(rule: ConfidenceRule, completion: Completion) -> float:
    """The confidence of an answer under ``rule`` (verifier answers are scored separately)."""
    if rule.signal == "logprobs":
        return _logprob_mean(completion)
    if rule.signal == "label_probability":
        return _label(completion, rule.labels)
    if rule.signal == "validator":
        return _validate(completion, rule.validator)
    raise ValueError(f"signal {rule.signal!r} is scored with verifier_score")


def verifier_prompt(request: dict[str, Any], answer: str) -> dict[str, Any]:
    """A yes/no request asking a verifier model to judge an answer."""
    question = ""
    for message in reversed(request.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            question = content if isinstance(content, str) else json.dumps(content)
            break
    return {
        "messages": [
            {"role": "system", "content": "You check answers. Reply with one word: yes or no."},
            {
                "role": "user",
                "content": f"Question:\n{question}\n\nProposed answer:\n{answer}\n\n"
                "Is the proposed answer correct and complete?",
            },
        ],
        "max_tokens": 1,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 5,
    }


def verifier_score(verdict: Completion) -> float:
    """P(yes) from the verifier's first token, or its text when it gives no logprobs."""
    if verdict.top_logprobs:
        first = verdict.top_logprobs[0]
        yes = sum(math.exp(lp) for tok, lp in first.items() if tok.strip(_STRIP).lower() == "yes")
        no = sum(math.exp(lp) for tok, lp in first.items() if tok.strip(_STRIP).lower() == "no")
        if yes + no > 0:
            return yes / (yes + no)
    text = (verdict.content or "").strip(_STRIP).lower()
    return 1.0 if text.startswith("yes") else 0.0
