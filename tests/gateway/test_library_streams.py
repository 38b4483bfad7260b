"""Streams opened through the library and then dropped unread still settle everything."""

from __future__ import annotations

import asyncio
import gc

from modelroute import load_policy_text
from modelroute.failures import FailureClass
from modelroute.records.record import MemorySink
from modelroute.router import Router
from modelroute.testing import Simulator

from .fixtures import POLICY, sim_config

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


async def test_a_dropped_stream_is_recorded_and_settles_the_probe() -> None:
    async with Simulator(sim_config()) as sim:
        text = POLICY.replace("{sim}", sim.openai_base_url).replace("{sim_root}", sim.base_url)
        text = text.replace(
            "defaults:\n",
            "defaults:\n  circuit_breaker: {consecutive_failures: 1, cooldown_s: 0.05}\n",
        )
        sink = MemorySink()
        router = Router(load_policy_text(text), api_keys={}, sink=sink)
        try:
            router.breakers.failure("primary", FailureClass.SERVER_ERROR)  # trips at once
            await asyncio.sleep(0.06)  # cooldown over: the next call is the half-open probe
            assert router.breakers.state("primary") == "half_open"

            stream = await router.stream({"model": "chat", "messages": MESSAGES, "stream": True})
            request_id = stream.record.request_id
            assert stream.headers["x-modelroute-model"] == "primary"
            # It answered: the probe is settled although nobody reads the rest.
            assert router.breakers.state("primary") == "closed"
            assert "primary" not in router.breakers.open_models()
            assert sink.find(request_id) is None  # not finished yet

            del stream
            gc.collect()
            record = sink.find(request_id)
            assert record is not None
            assert record.status == "cancelled" and record.final_model == "primary"
            assert [a.model for a in record.attempts] == ["primary"]
        finally:
            await router.aclose()
