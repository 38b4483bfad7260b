"""Confidence of an answer, from the signal a cascade route declares."""

from modelroute.confidence.signals import (
    confidence,
    needs_logprobs,
    verifier_prompt,
    verifier_score,
)

__all__ = ["confidence", "needs_logprobs", "verifier_prompt", "verifier_score"]
