"""Learned routing: a router trained on recorded outcomes predicts each model's score for a
prompt; a ``learned`` route picks the cheapest model whose prediction clears a threshold
calibrated to a quality target.

- ``decide(ctx, text, policy, stats)``: request -> Decision, the same for live traffic
  (``Router``) and offline simulation.
- ``format``: the router file (npz + JSON header, no pickle); ``scorers``: numpy inference;
  ``fit``: training and calibration (``modelroute train``).
"""

from modelroute.learned.decide import decide, prompt_text, route_scores

__all__ = ["decide", "prompt_text", "route_scores"]
