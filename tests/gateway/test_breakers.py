"""Circuit breakers (``state/breakers.py``) with an injected clock: no sleeping, exact times."""

from __future__ import annotations

import pytest

from modelroute.state.breakers import Breakers, BreakerSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _breakers(
    clock: Clock,
    *,
    consecutive_failures: int = 3,
    cooldown_s: float = 10.0,
    window: int = 20,
    error_rate: float = 0.5,
) -> Breakers:
    settings = BreakerSettings(
        consecutive_failures=consecutive_failures,
        error_rate=error_rate,
        window=window,
        cooldown_s=cooldown_s,
    )
    return Breakers(settings, clock)


def test_an_unknown_model_is_closed_and_allowed(clock: Clock) -> None:
    b = _breakers(clock)
    assert b.allow("m") and b.state("m") == "closed"
    assert b.open_models() == frozenset()


def test_opens_after_n_consecutive_unhealthy_failures(clock: Clock) -> None:
    b = _breakers(clock)
    b.failure("m", unhealthy=True)
    b.failure("m", unhealthy=True)
    assert b.state("m") == "closed" and b.allow("m")
    b.failure("m", unhealthy=True)
    assert b.state("m") == "open"
    assert not b.allow("m")
    assert b.open_models() == frozenset({"m"})
    assert b.allow("other")  # per model


def test_a_success_resets_the_consecutive_count(clock: Clock) -> None:
    b = _breakers(clock, window=100)  # keep the error-rate rule out of the way
    for _ in range(5):
        b.failure("m", unhealthy=True)
        b.failure("m", unhealthy=True)
        b.success("m")
        b.success("m")
        b.success("m")
    assert b.state("m") == "closed"


def test_failures_that_say_nothing_about_health_do_not_count(clock: Clock) -> None:
    b = _breakers(clock)
    for _ in range(10):
        b.failure("m", unhealthy=False)  # bad_request, auth, a lost hedge...
    assert b.state("m") == "closed" and b.allow("m")


def test_opens_on_the_error_rate_over_the_window(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=100, window=10, error_rate=0.5)
    b.failure("m", unhealthy=True)
    b.success("m")
    b.failure("m", unhealthy=True)
    b.success("m")
    assert b.state("m") == "closed"  # 2 of 4, but fewer than window // 2 calls seen
    b.failure("m", unhealthy=True)
    assert b.state("m") == "open"  # 3 of 5


def test_cooldown_then_exactly_one_probe(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=1)
    b.failure("m", unhealthy=True)
    clock.now += 9.9
    assert b.state("m") == "open" and not b.allow("m")
    clock.now += 0.1
    assert b.state("m") == "half_open"
    assert "m" not in b.open_models()  # the planner may offer it again
    assert b.allow("m")  # the probe
    assert not b.allow("m")  # one at a time
    assert "m" in b.open_models()  # while the probe is out


def test_a_successful_probe_closes_the_circuit(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=1)
    b.failure("m", unhealthy=True)
    clock.now += 10
    assert b.allow("m")
    b.success("m")
    assert b.state("m") == "closed"
    assert b.allow("m") and b.allow("m")
    assert b.open_models() == frozenset()


def test_a_failed_probe_reopens_for_a_full_cooldown(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=3)
    for _ in range(3):
        b.failure("m", unhealthy=True)
    clock.now += 10
    assert b.allow("m")
    b.failure("m", unhealthy=True)  # one failure is enough when half-open
    assert b.state("m") == "open" and not b.allow("m")
    clock.now += 9.9
    assert not b.allow("m")
    clock.now += 0.1
    assert b.allow("m")


def test_a_probe_that_ends_without_a_verdict_frees_the_slot(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=1)
    b.failure("m", unhealthy=True)
    clock.now += 10
    assert b.allow("m")
    b.failure("m", unhealthy=False)  # e.g. the probe lost a hedge race
    assert b.state("m") == "half_open" and b.allow("m")


def test_release_frees_a_probe_that_never_went_out(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=1)
    b.failure("m", unhealthy=True)
    clock.now += 10
    assert b.allow("m")
    assert "m" in b.open_models()
    b.release("m")
    assert "m" not in b.open_models()
    assert b.allow("m")
    b.release("closed-model")  # a no-op for a model without a breaker
    assert b.state("closed-model") == "closed"


def test_retry_after_cools_a_model_down_for_that_long(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=1, cooldown_s=30)
    b.failure("m", unhealthy=False, retry_after_s=2.0)  # 429 with Retry-After: 2
    assert b.state("m") == "open" and "m" in b.open_models()
    clock.now += 2
    assert b.state("m") == "half_open" and b.allow("m")


def test_open_models_updates_when_a_cooldown_ends(clock: Clock) -> None:
    b = _breakers(clock, consecutive_failures=1)
    b.failure("a", unhealthy=True)
    clock.now += 5
    b.failure("b", unhealthy=True)
    assert b.open_models() == frozenset({"a", "b"})
    clock.now += 5
    assert b.open_models() == frozenset({"b"})  # no call to the breakers needed
    clock.now += 5
    assert b.open_models() == frozenset()
    assert b.snapshot() == {"a": "half_open", "b": "half_open"}
