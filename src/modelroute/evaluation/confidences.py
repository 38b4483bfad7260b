"""The confidence a cascade route would have in an evaluated answer, kept on its outcome.

A cascade accepts an early tier's answer when its confidence signal clears the threshold;
``modelroute calibrate`` fits that threshold from outcomes that carry the signal's value
beside the answer's score. The values are computed by the engine's own functions
(``modelroute.confidence``), so what is calibrated is what the engine will read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelroute.confidence import confidence, needs_logprobs, verifier_prompt, verifier_score
from modelroute.errors import ModelrouteError
from modelroute.policy.compiled import ConfidenceRule, Model
from modelroute.types import Completion

if TYPE_CHECKING:
    from modelroute.router import Router

_LOGPROBS = ConfidenceRule("logprobs", 0.0, (), None, None)


def wants_logprobs(rule: ConfidenceRule | None, model: Model) -> bool:
    """Ask ``model`` for logprobs: the signal reads them and the model can give them."""
    return rule is not None and needs_logprobs(rule) and "logprobs" in model.capabilities


def with_logprobs(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "logprobs": True, "top_logprobs": 5}


class Signals:
    """Scores answers by a route's confidence rule (and by ``logprobs`` whenever the answer
    came with them). A signal with no evidence (no logprobs returned, the verifier failed)
    is left out rather than recorded as 0, so calibration never fits on missing data."""

    def __init__(self, router: Router, rule: ConfidenceRule | None) -> None:
        self.router = router
        self.rule = rule
        self.spent_usd = 0.0  # verifier calls

    async def score(self, request: dict[str, Any], completion: Completion) -> dict[str, float]:
        rule = self.rule
        if rule is None:
            return {}
        values: dict[str, float] = {}
        if completion.token_logprobs:
            values["logprobs"] = confidence(_LOGPROBS, completion)
        if rule.signal == "verifier":
            verdict = await self._verify(request, completion)
            if verdict is not None:
                values["verifier"] = verdict
        elif not needs_logprobs(rule) or completion.token_logprobs:
            values[rule.signal] = confidence(rule, completion)
        return values

    async def _verify(self, request: dict[str, Any], completion: Completion) -> float | None:
        rule = self.rule
        assert rule is not None and rule.verifier is not None
        body: dict[str, Any] = {
            **verifier_prompt(request, completion.content or ""),
            "model": rule.verifier,
        }
        if "logprobs" not in self.router.policy.models[rule.verifier].capabilities:
            body.pop("logprobs")
            body.pop("top_logprobs")
        try:
            result = await self.router.chat(body)
        except ModelrouteError:
            return None
        self.spent_usd += result.record.cost_usd
        return verifier_score(result.completion)
