"""The per-attempt time limit: a timeout when it runs out, and nobody else's cancellation.
On virtual time (conftest.py): every limit fires at its exact moment."""

from __future__ import annotations

import asyncio

import pytest

from modelroute.engine.deadline import Deadline


async def test_a_body_that_overruns_gets_a_timeout() -> None:
    started = asyncio.get_running_loop().time()
    with pytest.raises(TimeoutError):
        async with Deadline(0.05):
            await asyncio.sleep(5)
    assert asyncio.get_running_loop().time() - started == 0.05


async def test_a_body_within_the_limit_is_untouched() -> None:
    async with Deadline(0.5):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.6)  # the timer was withdrawn: nothing cancels us later
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_an_outside_cancellation_stays_a_cancellation() -> None:
    async def body() -> None:
        async with Deadline(5):
            await asyncio.sleep(5)

    task = asyncio.ensure_future(body())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_outer_limit_that_runs_out_first_is_the_outer_ones() -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05) as outer:
            async with Deadline(5):
                await asyncio.sleep(5)
    assert outer.expired()


async def test_the_inner_limit_running_out_leaves_the_outer_one_alone() -> None:
    async with asyncio.timeout(5) as outer:
        with pytest.raises(TimeoutError):
            async with Deadline(0.05):
                await asyncio.sleep(5)
    assert not outer.expired()
