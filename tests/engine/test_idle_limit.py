"""The relay's silence limit: fires on upstream silence only, once per silence. On virtual
time (conftest.py), so the moment it fires is exact."""

from __future__ import annotations

import asyncio

import pytest

from modelroute.engine.idle import IdleLimit


async def _relay(gaps: list[float], limit_s: float, client_delay: float = 0.0) -> list[int]:
    """Wait ``gaps[i]`` for event i (upstream), then ``client_delay`` (a slow client)."""
    limit = IdleLimit(limit_s)
    seen: list[int] = []
    try:
        for i, gap in enumerate(gaps):
            limit.wait_start()
            await asyncio.sleep(gap)
            limit.wait_end()
            seen.append(i)
            await asyncio.sleep(client_delay)
    except asyncio.CancelledError:
        if not limit.absorb():
            raise
        raise TimeoutError(f"silent after {len(seen)} events") from None
    finally:
        limit.stop()
    return seen


async def test_steady_events_never_trip_it() -> None:
    assert await _relay([0.02] * 15, limit_s=0.05) == list(range(15))


async def test_a_long_silence_ends_the_relay() -> None:
    with pytest.raises(TimeoutError, match="silent after 2 events"):
        await _relay([0.01, 0.01, 0.3], limit_s=0.05)
    assert round(asyncio.get_running_loop().time(), 9) == 0.07  # 50 ms after the 2nd event


async def test_time_spent_on_a_slow_client_does_not_count() -> None:
    assert await _relay([0.01] * 3, limit_s=0.05, client_delay=0.12) == [0, 1, 2]


async def test_an_outside_cancellation_is_not_taken_for_silence() -> None:
    task = asyncio.ensure_future(_relay([5.0], limit_s=10))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
