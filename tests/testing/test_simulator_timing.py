"""The simulator's timing: latency and token pacing over the wire, the latency distribution
and the token and logprob helpers behind it."""

from __future__ import annotations

import statistics
import time

import httpx
import pytest

from modelroute.testing.sim_config import Percentiles
from modelroute.testing.sim_engine import LatencyDist, split_tokens, spread_logprob

from .simulator_support import TEN_WORDS, oa_body


async def test_latency_and_token_pacing(http: httpx.AsyncClient) -> None:
    started = time.perf_counter()
    r = await http.post("/v1/chat/completions", json=oa_body(model="paced"))
    assert r.json()["choices"][0]["message"]["content"] == TEN_WORDS
    assert time.perf_counter() - started >= 0.075  # constant 80 ms
    arrivals = []
    body = oa_body(model="paced", stream=True)
    async with http.stream("POST", "/v1/chat/completions", json=body) as s:
        async for line in s.aiter_lines():
            if '"content":"' in line and '"content":""' not in line:
                arrivals.append(time.perf_counter())
    assert len(arrivals) == 10
    # 10 tokens at 100 tokens/s: 9 gaps of 10 ms between first and last.
    assert arrivals[-1] - arrivals[0] >= 0.08


def test_latency_distribution_fits_percentiles() -> None:
    import random

    dist = LatencyDist(Percentiles(p50=20, p95=60))
    rng = random.Random(1)
    samples = sorted(dist.sample_s(rng) * 1000 for _ in range(20_000))
    assert samples[10_000] == pytest.approx(20, rel=0.05)
    assert samples[19_000] == pytest.approx(60, rel=0.08)
    constant = LatencyDist(Percentiles(p50=15, p95=15))
    assert {constant.sample_s(rng) for _ in range(10)} == {0.015}


def test_tokens_and_logprob_spread() -> None:
    for text in ["Paris", " two  words ", "a b c", "", "   "]:
        assert "".join(split_tokens(text)) == text
    assert len(split_tokens("one two three")) == 3
    for n in (1, 2, 5, 8):
        values = spread_logprob(-0.7, n)
        assert len(values) == n
        assert statistics.fmean(values) == pytest.approx(-0.7, abs=1e-12)
        assert all(v <= 0 for v in values)
