"""A library caller's record and a gateway caller's record of the same failure carry the same
status: both read the one table in ``statuses.py`` (the gateway answers with it too)."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute import ModelrouteError
from modelroute.failures import FailureClass
from modelroute.records.record import MemorySink, RequestRecord, RequestStatus
from modelroute.router import Router
from modelroute.state.circuits import CircuitState

from .faults_support import POLICY, fail, scripted_sim, user_messages
from .harness import Gateway, gateway


class AllOpen:
    """Every model's circuit is open (a replica's shared state might say so)."""

    def allow(self, model: str, *, probe: bool = False, waited: bool = False) -> bool:
        return False

    def why_not(self, model: str) -> str:
        return "circuit open"

    def release(self, model: str) -> None:
        pass

    def success(self, model: str) -> None:
        pass

    def failure(
        self, model: str, cls: FailureClass | None = None, retry_after_s: float | None = None
    ) -> None:
        pass

    def open_models(self) -> frozenset[str]:
        return frozenset({"primary", "mid", "secondary", "claude"})

    def state(self, model: str) -> str:
        return "open"

    def snapshot(self) -> dict[str, str]:
        return dict.fromkeys(self.open_models(), "open")


async def _library_record(gw: Gateway, route: str, circuits: CircuitState | None) -> RequestRecord:
    """The same request through a library ``Router`` on the same policy and upstreams."""
    policy = gw.router.policy
    router = Router(
        policy,
        sink=MemorySink(),
        circuits=circuits,
        api_keys={name: "sk-test" for name in policy.models},
    )
    body: dict[str, Any] = {"model": route, "messages": user_messages("hello")}
    try:
        with pytest.raises(ModelrouteError) as caught:
            await router.chat(body)
    finally:
        await router.aclose()
    assert caught.value.record is not None
    return caught.value.record


# Open circuits may rule out every candidate: the planner finds the request infeasible.
EJECT_ALL = POLICY.replace(
    "defaults:\n", "defaults:\n  circuit_breaker: {max_ejection_percent: 100}\n"
)

CASES = {
    # Every candidate rejected only because its circuit is open: a passing condition.
    "circuits-open": ("chat", {}, True, 503, RequestStatus.INFEASIBLE),
    # The planner keeps one as a probe, and the breaker refuses it too.
    "probes-refused": ("chat", {}, True, 503, RequestStatus.FAILED),
    "server-errors": ("once", {"script": ["server_error"] * 4}, False, 502, RequestStatus.FAILED),
    "rate-limited": ("once", {"script": ["rate_limited"] * 4}, False, 503, RequestStatus.FAILED),
    "unknown-route": ("no-such-route", {}, False, 404, RequestStatus.REJECTED),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_library_and_gateway_record_the_same_status(case: str) -> None:
    route, script, circuits_open, status, request_status = CASES[case]
    sim = scripted_sim(**{"primary-sim": script, "secondary-sim": script})
    kwargs: dict[str, Any] = {"circuits": AllOpen()} if circuits_open else {}
    policy = EJECT_ALL if case == "circuits-open" else POLICY
    async with gateway(policy, sim, **kwargs) as gw:
        error, served = await fail(gw, route)  # also checks the record against the response
        library = await _library_record(gw, route, AllOpen() if circuits_open else None)
    assert error.status_code == served.http_status == library.http_status == status
    assert served.status == library.status == request_status
    assert served.failure == library.failure
    if circuits_open:
        assert error.response.headers["retry-after"] == "1"
