"""Outcomes: measured quality per prompt, model and provider-reported version."""

from modelroute.outcomes.outcome import Outcome, OutcomeSource, outcome_id, prompt_hash

__all__ = ["Outcome", "OutcomeSource", "outcome_id", "prompt_hash"]
