"""A reloaded policy's circuit-breaker settings take effect without a restart: in process
(``Breakers``) through the router's ``use_policy``, and in the view shared through Redis."""

from __future__ import annotations

import random

import pytest

from modelroute import load_policy_text
from modelroute.engine import AllAttemptsFailed
from modelroute.failures import FailureClass
from modelroute.policy.compiled import BreakerPolicy
from modelroute.records.record import MemorySink
from modelroute.router import Router
from modelroute.state.breakers import Breakers
from modelroute.state.redis_state import connect
from modelroute.state.shared_circuits import SharedBreakers
from modelroute.testing import Fail, ScriptedProvider

from .conftest import REDIS_URL
from .support import MODEL

POLICY = """
version: VERSION
defaults:
  retries: {max_attempts: 1}
  circuit_breaker: {consecutive_failures: RUNS, min_calls: 1000, cooldown_s: 600}
models:
  flaky:FLAKY
EXTRAroutes:
  chat:
    strategy: {kind: fixed, models: [flaky]}
"""
ADDED = (
    "  added:" + MODEL.format(name="added") + "\n    circuit_breaker: {consecutive_failures: 1}\n"
)


def policy(version: str, runs: int, extra: str = "") -> str:
    text = POLICY.replace("VERSION", version).replace("RUNS", str(runs))
    return text.replace("FLAKY", MODEL.format(name="flaky")).replace("EXTRA", extra)


DOWN = Fail(FailureClass.SERVER_ERROR)
BODY = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


async def fail_times(router: Router, n: int) -> None:
    for _ in range(n):
        with pytest.raises(AllAttemptsFailed):
            await router.chat(dict(BODY))


async def test_a_reload_applies_the_new_breaker_settings() -> None:
    router = Router(
        load_policy_text(policy("v1", 10), "p.yaml"),
        providers={"openai": ScriptedProvider({"flaky": DOWN, "added": DOWN})},
        rng=random.Random(1),
        api_keys={},
        sink=MemorySink(),
    )
    await fail_times(router, 3)
    assert router.breakers.state("flaky") == "closed"  # 3 in a row of the 10 it needs
    reloaded = load_policy_text(policy("v2", 4, ADDED), "p.yaml")
    router.use_policy(reloaded)
    await fail_times(router, 1)  # the run goes on: 4 in a row now trips it
    assert router.breakers.state("flaky") == "open"
    assert router.breakers.snapshot()["flaky"] == "open"
    # the model the reload added has its own setting: one failure opens it
    added = load_policy_text(
        policy("v3", 4, ADDED).replace("models: [flaky]", "models: [added]"), "p.yaml"
    )
    router.use_policy(added)
    await fail_times(router, 1)
    assert router.breakers.state("added") == "open"
    await router.aclose()


async def test_a_shared_view_writes_with_the_new_settings(redis_prefix: str) -> None:
    old = {"m": BreakerPolicy(consecutive_failures=10, min_calls=1000, cooldown_s=600)}
    new = {"m": BreakerPolicy(consecutive_failures=2, min_calls=1000, cooldown_s=600)}
    a = SharedBreakers(Breakers(old), connect(REDIS_URL), old, prefix=redis_prefix)
    b = SharedBreakers(Breakers(old), connect(REDIS_URL), old, prefix=redis_prefix)
    a.configure(new)
    b.configure(new)
    a.failure("m", FailureClass.SERVER_ERROR)  # one here, one there: two in a row
    await a.sync(poll=False)
    b.failure("m", FailureClass.SERVER_ERROR)
    await b.sync()
    assert b.state("m") == "open"
    await a.sync()
    assert a.state("m") == "open"  # tripped in Redis on the new run length, seen here too
    await a.aclose()
    await b.aclose()
