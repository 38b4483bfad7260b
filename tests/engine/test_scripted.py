"""The test double itself: every failure class it plays is the one ``classify`` reads back,
its streams arrive as scripted, and its waits are exact on virtual time."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from modelroute.failures import FailureClass, classify
from modelroute.testing import Draw, Fail, Hang, Reply, Script, ScriptedProvider
from modelroute.testing.scripted import upstream_error
from modelroute.types import UpstreamError

from .support import make_router

ERRORS = [c for c in FailureClass if c is not FailureClass.EMPTY_RESPONSE]


@pytest.mark.parametrize("cls", ERRORS, ids=[c.value for c in ERRORS])
def test_every_failure_class_is_classified_back_as_itself(cls: FailureClass) -> None:
    error = upstream_error(Fail(cls, retry_after_s=2.5), "m-v1")
    failure = classify(error)
    assert failure.cls is cls
    # Retry-After is read from HTTP error responses only, as from a real upstream.
    assert failure.retry_after_s == (2.5 if error.status >= 400 else None)


async def test_a_script_plays_in_order_then_its_last_step() -> None:
    provider = ScriptedProvider(
        {"primary": Script([Fail(FailureClass.OVERLOADED, latency_s=0.5)], then=Reply("fine"))}
    )
    router = make_router(provider)
    model = router.policy.models["primary"]
    loop = asyncio.get_running_loop()
    with pytest.raises(UpstreamError) as caught:
        await provider.complete(model, {}, None)
    assert caught.value.status == 503 and loop.time() == 0.5
    for _ in range(2):
        answer = await provider.complete(model, {}, None)
        assert answer.content == "fine" and answer.model_reported == "primary-v1"
    other = await provider.complete(router.policy.models["secondary"], {}, None)
    assert other.content == "secondary answer"  # no script: the default answer
    assert [(c.model, c.outcome, c.at) for c in provider.calls] == [
        ("primary", "overloaded", 0.0),
        ("primary", "ok", 0.5),
        ("primary", "ok", 0.5),
        ("secondary", "ok", 0.5),
    ]


async def test_a_stream_arrives_piece_by_piece_then_fails_as_scripted() -> None:
    reply = Reply(chunks=("one ", "two ", "three"), latency_s=0.2, gap_s=(0.1, 0.3), fail_after=2)
    provider = ScriptedProvider({"primary": reply})
    model = make_router(provider).policy.models["primary"]
    loop = asyncio.get_running_loop()
    seen = []
    with pytest.raises(UpstreamError) as caught:
        async for chunk in provider.stream(model, {}, None):
            seen.append((chunk.content, round(loop.time(), 9)))
    assert seen == [("one ", 0.2), ("two ", 0.3)]
    assert classify(caught.value).cls is FailureClass.SERVER_ERROR
    assert provider.closed_streams == 1


async def test_a_whole_stream_ends_with_the_finish_and_the_usage() -> None:
    provider = ScriptedProvider({"primary": Reply("a b", gap_s=0.25)})
    model = make_router(provider).policy.models["primary"]
    chunks = [chunk async for chunk in provider.stream(model, {}, None)]
    assert [c.content for c in chunks] == ["a ", "b", "", ""]
    assert chunks[-2].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens == 2
    assert asyncio.get_running_loop().time() == 0.25
    assert provider.closed_streams == 0


async def test_a_hang_waits_for_whoever_gives_up_first() -> None:
    provider = ScriptedProvider({"primary": Hang()})
    model = make_router(provider).policy.models["primary"]
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(30):
            await provider.complete(model, {}, None)
    assert asyncio.get_running_loop().time() == 30


async def test_draws_are_seeded() -> None:
    async def outcomes(seed: int) -> list[str]:
        provider = ScriptedProvider(
            {"primary": Draw({Fail(FailureClass.SERVER_ERROR): 0.5})}, seed=seed
        )
        model = make_router(provider).policy.models["primary"]
        for _ in range(20):
            with contextlib.suppress(UpstreamError):
                await provider.complete(model, {}, None)
        return [c.outcome for c in provider.calls]

    assert await outcomes(3) == await outcomes(3)
    assert set(await outcomes(3)) == {"ok", "server_error"}
    assert await outcomes(3) != await outcomes(4)
