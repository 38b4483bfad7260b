"""Fixtures for the upstream simulator tests: a simulator bound to 127.0.0.1 on a free port,
and raw, ``openai`` SDK and ``anthropic`` SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import httpx
import openai
import pytest

from modelroute.testing import Simulator

from .simulator_support import CONFIG


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(CONFIG) as s:
        yield s


@pytest.fixture
async def http(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=5.0) as client:
        yield client


@pytest.fixture
async def oai(sim: Simulator) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def ant(sim: Simulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="sk-test", max_retries=0)
    yield client
    await client.close()
