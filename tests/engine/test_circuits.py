"""Circuit breakers as the engine and the planner use them, through the ``circuits`` port:
cool-downs are waited out on virtual time, in no real time."""

from __future__ import annotations

import asyncio

import pytest

from modelroute.failures import FailureClass
from modelroute.records.record import RequestRecord
from modelroute.testing import Fail, Hang, Reply, ScriptedProvider

from .support import ask, fail, make_router, record_of, starts, trail

STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
SERVER_ERROR = Fail(FailureClass.SERVER_ERROR)


def breakers(**settings: float) -> str:
    inline = ", ".join(f"{key}: {value}" for key, value in settings.items())
    return f"  circuit_breaker: {{{inline}}}\n"


def circuit_rejected(record: RequestRecord, model: str) -> bool:
    assert record.decision is not None
    return any(
        r["model"] == model and r["reason"] == "circuit_open" for r in record.decision["rejections"]
    )


@STREAM
async def test_an_open_circuit_skips_the_model_until_a_probe_succeeds(stream: bool) -> None:
    provider = ScriptedProvider({"primary": [SERVER_ERROR, SERVER_ERROR, Reply("Paris")]})
    router = make_router(provider, breakers(consecutive_failures=2, cooldown_s=30))
    for _ in range(2):
        _, record = await ask(router, "once", stream=stream)
        assert trail(record) == [("primary", "failed", "server_error"), ("secondary", "ok", None)]
    assert router.breakers.state("primary") == "open"

    answer, record = await ask(router, "once", stream=stream)
    assert answer == "secondary answer"
    assert circuit_rejected(record, "primary")
    assert trail(record) == [("secondary", "ok", None)]

    await asyncio.sleep(29.999)
    assert router.breakers.state("primary") == "open"
    await asyncio.sleep(0.001)  # the cool-down is over: one probe may go through
    assert router.breakers.state("primary") == "half_open"
    answer, record = await ask(router, "once", stream=stream)
    assert answer == "Paris"
    assert not circuit_rejected(record, "primary")
    assert trail(record) == [("primary", "ok", None)]
    assert router.breakers.state("primary") == "closed"
    assert [c.model for c in provider.calls] == ["primary", "secondary"] * 2 + [
        "secondary",
        "primary",
    ]


async def test_a_failed_probe_reopens_the_circuit_for_a_whole_cooldown() -> None:
    provider = ScriptedProvider({"primary": [SERVER_ERROR, SERVER_ERROR]})
    router = make_router(provider, breakers(consecutive_failures=1, cooldown_s=30))
    await ask(router, "once")
    await asyncio.sleep(30)
    _, probe = await ask(router, "once")
    assert trail(probe) == [("primary", "failed", "server_error"), ("secondary", "ok", None)]
    assert router.breakers.state("primary") == "open"  # one failed probe re-opens it
    await asyncio.sleep(29.9)
    _, after = await ask(router, "once")
    assert circuit_rejected(after, "primary") and trail(after) == [("secondary", "ok", None)]
    assert provider.sent() == [
        ("primary", "server_error"),
        ("secondary", "ok"),
        ("primary", "server_error"),
        ("secondary", "ok"),
        ("secondary", "ok"),
    ]


async def test_a_probe_claimed_after_the_deadline_is_released() -> None:
    """A half-open model reached after the deadline passed is not called; its probe must stay
    free, or the model would be refused as ``circuit_open`` for good."""
    provider = ScriptedProvider(
        {"primary": [SERVER_ERROR, Hang()], "secondary": [SERVER_ERROR, Reply()]}
    )
    settings = breakers(consecutive_failures=1, cooldown_s=30, max_ejection_percent=100)
    router = make_router(provider, settings)
    await fail(router, "once")  # both fail: both circuits open
    await asyncio.sleep(30)  # both half-open
    error, record = await fail(router, "impatient")  # primary's probe hangs the whole 600 ms
    assert error.failure.cls is FailureClass.TIMEOUT
    assert trail(record) == [("primary", "failed", "timeout")]  # secondary never called
    assert router.breakers.state("secondary") == "half_open"
    assert "secondary" not in router.breakers.open_models()  # its probe is still free
    answer, record = await ask(router, "once")
    assert circuit_rejected(record, "primary")  # re-opened by its failed probe
    assert answer == "secondary answer" and trail(record) == [("secondary", "ok", None)]
    assert router.breakers.state("secondary") == "closed"


async def test_a_circuit_opened_after_planning_is_skipped_by_the_engine() -> None:
    """Request A is planned while primary is healthy; while A waits on a hung first model,
    request B trips primary's breaker; A then skips primary instead of calling it."""
    provider = ScriptedProvider({"mid": Hang(), "primary": SERVER_ERROR})
    router = make_router(provider, breakers(consecutive_failures=1, cooldown_s=30))
    first = asyncio.ensure_future(record_of(router, "late-switch"))
    await asyncio.sleep(0.1)  # A is waiting on mid
    _, tripping = await ask(router, "once")
    assert trail(tripping) == [("primary", "failed", "server_error"), ("secondary", "ok", None)]
    record = await first
    assert not circuit_rejected(record, "primary")  # it was closed at planning time
    assert [(a.model, a.outcome) for a in record.attempts] == [
        ("mid", "failed"),
        ("primary", "skipped"),
        ("secondary", "ok"),
    ]
    assert record.attempts[1].message == "circuit open (ill health)"
    assert starts(record) == [0.0, 300.0, 300.0]  # mid's 300 ms, then no time lost on primary
    assert provider.sent() == [
        ("mid", "hang"),
        ("primary", "server_error"),
        ("secondary", "ok"),  # B's
        ("secondary", "ok"),  # A's
    ]


@STREAM
async def test_failures_that_say_nothing_about_the_model_leave_it_closed(stream: bool) -> None:
    """A bad request or an empty answer is the request's doing: ten of them in a row do not
    open a breaker that opens after two server errors."""
    provider = ScriptedProvider(
        {"primary": [Fail(FailureClass.BAD_REQUEST)] * 5 + [Fail(FailureClass.EMPTY_RESPONSE)] * 5}
    )
    router = make_router(provider, breakers(consecutive_failures=2))
    for _ in range(10):
        await record_of(router, "once", stream=stream)
    assert router.breakers.state("primary") == "closed"


class Maintenance:
    """A ``CircuitState`` of the caller's own: one model is out for maintenance, and every
    verdict the engine reports is kept."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.reports: list[tuple[str, str]] = []

    def allow(self, model: str, *, probe: bool = False, waited: bool = False) -> bool:
        return model != self.out

    def why_not(self, model: str) -> str:
        return "circuit open (maintenance)"

    def release(self, model: str) -> None:
        self.reports.append((model, "released"))

    def success(self, model: str) -> None:
        self.reports.append((model, "ok"))

    def failure(
        self, model: str, cls: FailureClass | None = None, retry_after_s: float | None = None
    ) -> None:
        self.reports.append((model, cls.value if cls else "no verdict"))

    def open_models(self) -> frozenset[str]:
        return frozenset({self.out})

    def state(self, model: str) -> str:
        return "open" if model == self.out else "closed"

    def snapshot(self) -> dict[str, str]:
        return {self.out: "open"}


@STREAM
async def test_the_router_uses_the_circuit_state_it_is_given(stream: bool) -> None:
    circuits = Maintenance("secondary")
    provider = ScriptedProvider({"primary": [SERVER_ERROR, Reply("Paris")]})
    router = make_router(provider, circuits=circuits)
    assert router.breakers is circuits
    answer, record = await ask(router, "everything", stream=stream)
    assert answer == "Paris"
    assert circuit_rejected(record, "secondary")  # the planner read open_models
    # A stream's success is reported once, at its first byte (which settles a probe).
    assert circuits.reports == [("primary", "server_error"), ("primary", "ok")]
