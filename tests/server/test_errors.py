"""The error → HTTP mapping for decisions nobody can serve."""

from __future__ import annotations

from modelroute.errors import InfeasibleError
from modelroute.planner.decision import Decision, Reason, Rejection
from modelroute.server.errors import http_error


def _decision(*rejections: Rejection) -> Decision:
    return Decision(
        route="r",
        strategy="fixed",
        objective="declared_order",
        policy_hash="h",
        selected_by="name",
        tiers=(),
        rejections=rejections,
        prompt_tokens=1,
        output_tokens=1,
        max_cost_usd=None,
        max_latency_ms=None,
        min_quality=None,
    )


def test_every_circuit_open_is_a_passing_503() -> None:
    err = http_error(
        InfeasibleError(
            _decision(Rejection("a", Reason.CIRCUIT_OPEN), Rejection("b", Reason.CIRCUIT_OPEN))
        )
    )
    assert err.status == 503 and err.headers["retry-after"] == "1"
    assert err.openai()["error"]["code"] == "circuits_open"


def test_a_constraint_no_model_meets_is_422() -> None:
    err = http_error(
        InfeasibleError(
            _decision(
                Rejection("a", Reason.CIRCUIT_OPEN),
                Rejection("b", Reason.OVER_COST_CEILING, 0.2, 0.1),
            )
        )
    )
    assert err.status == 422
    assert [r["reason"] for r in err.openai()["error"]["rejections"]] == [
        "circuit_open",
        "over_cost_ceiling",
    ]
