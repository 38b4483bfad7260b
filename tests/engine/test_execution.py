"""The engine hands back one typed value, an ``Execution``: its attempts and either the
answer, the stream open past its first byte, or the failure that ended it. A failure is a
value here, not an exception; the router raises it for its callers."""

from __future__ import annotations

import asyncio

from modelroute.engine import Execution, Executor
from modelroute.failures import FailureClass
from modelroute.features import request_context
from modelroute.planner import plan
from modelroute.records.record import AttemptResult
from modelroute.router import Router
from modelroute.testing import Fail, Reply, ScriptedProvider

from .support import body, make_router


async def _execute(router: Router, route: str, *, stream: bool = False) -> Execution:
    request = body(route, stream=stream)
    decision = plan(request_context(request), router.policy, router.stats_snapshot())
    start = asyncio.get_running_loop().time()
    executor = Executor(router.deps, router.policy, decision, request, start)
    return await (executor.stream() if stream else executor.complete())


async def test_an_answer_after_a_fallback() -> None:
    provider = ScriptedProvider({"primary": Fail(FailureClass.SERVER_ERROR)})
    execution = await _execute(make_router(provider), "once")
    assert execution.failure is None and execution.stream is None
    assert execution.answer is not None and execution.answer.model.name == "secondary"
    results = [a.outcome for a in execution.attempts]
    assert results == [AttemptResult.FAILED, AttemptResult.OK]
    assert execution.escalations == 0


async def test_a_failure_is_a_value() -> None:
    down = Fail(FailureClass.OVERLOADED)
    provider = ScriptedProvider({"primary": down, "secondary": down})
    execution = await _execute(make_router(provider), "once")
    assert execution.answer is None and execution.stream is None
    assert execution.failure is not None and execution.failure.cls is FailureClass.OVERLOADED
    assert [a.model for a in execution.attempts] == ["primary", "secondary"]


async def test_a_stream_open_past_its_first_byte() -> None:
    provider = ScriptedProvider({"primary": Reply(chunks=("one ", "two"))})
    execution = await _execute(make_router(provider), "once", stream=True)
    assert execution.stream is not None and execution.answer is None
    assert execution.stream.model.name == "primary"
    await execution.stream.aclose()


async def test_a_cascade_counts_its_escalations() -> None:
    doubtful = Reply("maybe", logprob=-3.0)
    provider = ScriptedProvider({"primary": doubtful})
    execution = await _execute(make_router(provider), "triage")
    assert execution.answer is not None and execution.answer.model.name == "secondary"
    assert execution.escalations == 1
    assert execution.attempts[0].outcome is AttemptResult.LOW_CONFIDENCE
