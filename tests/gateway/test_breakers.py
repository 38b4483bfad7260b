"""Circuit breakers (``state/breakers.py``) with an injected clock: no sleeping, exact times."""

from __future__ import annotations

import random
from typing import Any

import pytest

from modelroute.failures import FailureClass
from modelroute.policy.compiled import BreakerPolicy
from modelroute.state.breakers import Breakers

SERVER_ERROR = FailureClass.SERVER_ERROR
RATE_LIMITED = FailureClass.RATE_LIMITED


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _breakers(clock: Clock, **settings: Any) -> Breakers:
    base: dict[str, Any] = {"consecutive_failures": 3, "cooldown_s": 10.0, "min_calls": 20}
    return Breakers(clock=clock, default=BreakerPolicy(**{**base, **settings}))


def test_an_unknown_model_is_closed_and_allowed(clock: Clock) -> None:
    b = _breakers(clock)
    assert b.allow("m") and b.state("m") == "closed"
    assert b.open_models() == frozenset()


def test_opens_after_n_consecutive_unhealthy_failures(clock: Clock) -> None:
    b = _breakers(clock)
    b.failure("m", SERVER_ERROR)
    b.failure("m", FailureClass.TIMEOUT)
    assert b.state("m") == "closed" and b.allow("m")
    b.failure("m", FailureClass.CONNECT_ERROR)
    assert b.state("m") == "open"
    assert not b.allow("m")
    assert b.open_models() == frozenset({"m"})
    assert b.why_not("m") == "circuit open (ill health)"
    assert b.allow("other")  # per model


def test_a_success_resets_the_consecutive_count(clock: Clock) -> None:
    b = _breakers(clock, min_calls=1000)  # keep the error-rate rule out of the way
    for _ in range(5):
        b.failure("m", SERVER_ERROR)
        b.failure("m", SERVER_ERROR)
        b.success("m")
    assert b.state("m") == "closed"


@pytest.mark.parametrize(
    "cls", [FailureClass.BAD_REQUEST, FailureClass.AUTH, FailureClass.EMPTY_RESPONSE, None]
)
def test_failures_that_say_nothing_about_health_do_not_count(
    clock: Clock, cls: FailureClass | None
) -> None:
    b = _breakers(clock, min_calls=1)
    for _ in range(10):
        b.failure("m", cls)  # bad_request, auth, an empty answer, a lost hedge...
    assert b.state("m") == "closed" and b.allow("m")


def test_opens_on_the_error_rate_once_the_window_holds_enough_calls(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=100, min_calls=10, error_rate=0.5)
    for _ in range(4):
        b.failure("m", SERVER_ERROR)
        b.success("m")
    b.failure("m", SERVER_ERROR)
    assert b.state("m") == "closed"  # 5 of 9: fewer than min_calls calls seen
    b.success("m")
    assert b.state("m") == "closed"  # 5 of 10: the success was counted first
    b.failure("m", SERVER_ERROR)
    assert b.state("m") == "open"  # 6 of 11


def test_the_window_forgets_calls_older_than_window_s(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=100, min_calls=10, window_s=10.0)
    for _ in range(9):
        b.failure("m", SERVER_ERROR)
        clock.now += 0.1
    clock.now += 10  # those nine are out of the window now
    for _ in range(9):
        b.success("m")
    b.failure("m", SERVER_ERROR)
    assert b.state("m") == "closed"  # 1 of 10, not 10 of 19


def test_a_degraded_model_stays_closed_under_heavy_traffic(clock: Clock) -> None:
    """30% of calls failing, 100 calls a second for ten minutes, with the default settings:
    five failures in a row happen hundreds of times, and must not open the breaker."""
    b = Breakers(clock=clock)
    rng = random.Random(7)
    longest = run = 0
    for _ in range(60_000):
        clock.now += 0.01
        if rng.random() < 0.3:
            b.failure("m", SERVER_ERROR)
            run += 1
            longest = max(longest, run)
        else:
            b.success("m")
            run = 0
        assert b.state("m") == "closed"
    assert longest >= 5


def test_a_model_that_is_down_opens_quickly_under_heavy_traffic(clock: Clock) -> None:
    b = Breakers(clock=clock)
    for _ in range(5_000):  # healthy for 50 s: a full window of successes
        clock.now += 0.01
        b.success("m")
    failures = 0
    while b.state("m") == "closed":
        clock.now += 0.01
        b.failure("m", FailureClass.TIMEOUT)
        failures += 1
    assert failures == BreakerPolicy().consecutive_failures  # 0.1 s, not half a window


def test_one_rate_limit_does_not_cool_the_whole_model_down(clock: Clock) -> None:
    """A 429 with Retry-After is the engine's to wait out for that request's retry; other
    requests keep the model."""
    b = _breakers(clock)
    b.failure("m", RATE_LIMITED, retry_after_s=2.0)
    assert b.state("m") == "closed" and "m" not in b.open_models() and b.allow("m")


def test_rate_limits_on_most_calls_cool_the_model_down_for_the_retry_after(
    clock: Clock,
) -> None:
    b = _breakers(clock, consecutive_failures=100, min_calls=10, error_rate=0.5)
    for i in range(10):
        if i % 2:
            b.success("m")
        else:
            b.failure("m", RATE_LIMITED, retry_after_s=2.0)
    b.failure("m", RATE_LIMITED, retry_after_s=2.0)  # 6 of 11
    assert b.state("m") == "open" and "m" in b.open_models()
    assert b.why_not("m") == "circuit open (rate limits)"
    assert not b.allow("m")
    assert b.allow("m", waited=True)  # a retry that waited out its Retry-After still goes
    clock.now += 2  # the provider's time, not cooldown_s
    assert b.state("m") == "half_open" and b.allow("m")


def test_rate_limits_in_a_row_cool_the_model_down(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=3)
    b.failure("m", RATE_LIMITED, retry_after_s=1.5)
    b.failure("m", RATE_LIMITED, retry_after_s=1.5)
    assert b.state("m") == "closed"
    b.failure("m", RATE_LIMITED, retry_after_s=1.5)
    assert b.state("m") == "open"
    clock.now += 1.5
    assert b.state("m") == "half_open"


def test_ill_health_holds_back_even_a_retry_that_waited(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=1)
    b.failure("m", SERVER_ERROR)
    assert not b.allow("m", waited=True)


def test_cooldown_then_exactly_one_probe(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=1)
    b.failure("m", SERVER_ERROR)
    clock.now += 9.9
    assert b.state("m") == "open" and not b.allow("m")
    clock.now += 0.1
    assert b.state("m") == "half_open"
    assert "m" not in b.open_models()  # the planner may offer it again
    assert b.allow("m")  # the probe
    assert not b.allow("m")  # one at a time
    assert b.why_not("m") == "circuit open (ill health): its one probe is already out"
    assert "m" in b.open_models()  # while the probe is out


def test_a_probe_the_planner_kept_goes_before_the_cooldown_ends(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=1)
    b.failure("m", SERVER_ERROR)
    clock.now += 1
    assert not b.allow("m")
    assert b.allow("m", probe=True)  # the route's last resort: one probe now
    assert not b.allow("m", probe=True)  # and only one at a time
    b.success("m")
    assert b.state("m") == "closed" and b.open_models() == frozenset()


def test_a_failed_early_probe_keeps_the_circuit_open(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=1)
    b.failure("m", SERVER_ERROR)
    clock.now += 1
    assert b.allow("m", probe=True)
    b.failure("m", SERVER_ERROR)
    assert b.state("m") == "open"
    clock.now += 9.9
    assert b.state("m") == "open"  # a full cooldown from the failed probe
    assert b.allow("m", probe=True)  # the next probe may go


def test_a_successful_probe_closes_the_circuit_with_a_fresh_window(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=3)
    for _ in range(3):
        b.failure("m", SERVER_ERROR)
    clock.now += 10
    assert b.allow("m")
    b.success("m")
    assert b.state("m") == "closed"
    assert b.allow("m") and b.allow("m")
    assert b.open_models() == frozenset()
    b.failure("m", SERVER_ERROR)
    b.failure("m", SERVER_ERROR)
    assert b.state("m") == "closed"  # the failures before it opened are forgotten


def test_a_failed_probe_reopens_for_a_full_cooldown(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=3)
    for _ in range(3):
        b.failure("m", SERVER_ERROR)
    clock.now += 10
    assert b.allow("m")
    b.failure("m", SERVER_ERROR)  # one failure is enough when half-open
    assert b.state("m") == "open" and not b.allow("m")
    clock.now += 9.9
    assert not b.allow("m")
    clock.now += 0.1
    assert b.allow("m")


def test_late_failures_of_calls_made_before_it_opened_do_not_extend_it(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=1)
    b.failure("m", SERVER_ERROR)
    clock.now += 9
    b.failure("m", SERVER_ERROR)  # a call that was already out when it opened
    clock.now += 1
    assert b.state("m") == "half_open"


def test_late_successes_of_calls_made_before_it_opened_do_not_close_it(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=1)
    b.failure("m", SERVER_ERROR)
    b.success("m")  # under load, calls that were already out keep answering for a while
    assert b.state("m") == "open" and not b.allow("m")
    clock.now += 10
    assert b.allow("m")  # the probe decides
    b.success("m")
    assert b.state("m") == "closed"


def test_a_probe_that_ends_without_a_verdict_frees_the_slot(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=1)
    b.failure("m", SERVER_ERROR)
    clock.now += 10
    assert b.allow("m")
    b.failure("m")  # e.g. the probe lost a hedge race
    assert b.state("m") == "half_open" and b.allow("m")


def test_release_frees_a_probe_that_never_went_out(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=1)
    b.failure("m", SERVER_ERROR)
    clock.now += 10
    assert b.allow("m")
    assert "m" in b.open_models()
    b.release("m")
    assert "m" not in b.open_models()
    assert b.allow("m")
    b.release("closed-model")  # a no-op for a model without a breaker
    assert b.state("closed-model") == "closed"


def test_open_models_updates_when_a_cooldown_ends(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=1)
    b.failure("a", SERVER_ERROR)
    clock.now += 5
    b.failure("b", SERVER_ERROR)
    assert b.open_models() == frozenset({"a", "b"})
    clock.now += 5
    assert b.open_models() == frozenset({"b"})  # no call to the breakers needed
    clock.now += 5
    assert b.open_models() == frozenset()
    assert b.snapshot() == {"a": "half_open", "b": "half_open"}


def test_each_model_has_its_own_settings(clock: Clock) -> None:
    b = Breakers(
        {"strict": BreakerPolicy(consecutive_failures=1, cooldown_s=5)},
        clock,
        default=BreakerPolicy(consecutive_failures=2, cooldown_s=60),
    )
    b.failure("strict", SERVER_ERROR)
    b.failure("lenient", SERVER_ERROR)
    assert b.state("strict") == "open" and b.state("lenient") == "closed"
    b.failure("lenient", SERVER_ERROR)
    clock.now += 5
    assert b.state("strict") == "half_open" and b.state("lenient") == "open"
