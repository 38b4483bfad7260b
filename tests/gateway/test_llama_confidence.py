"""The ``logprobs`` confidence signal against a real llama.cpp server (the tiny stories260K
model): the confidence a cascade records is exactly what the answer's logprobs imply,
exp(mean logprob), computed here from the logprobs the server returned, and the cascade
escalates exactly when that is below its threshold.

Runs when ``llama_cpp`` is installed, like ``test_llama.py`` (whose server it starts).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from modelroute import load_policy_text
from modelroute.records.record import MemorySink
from modelroute.router import Router

from .harness import serve_router
from .test_llama import llama_server, pytestmark  # noqa: F401  (the llama marker and skip)

MODEL = """
  {name}:
    provider: openai
    base_url: "{llama}/v1"
    model_id: stories260k
    allow_floating: true
    prices: {{input: 0, output: 0}}
    context_window: 512
    capabilities: [logprobs]
    latency: {{p50_ms: 50, p95_ms: 200}}"""
ROUTE = """
  {name}:
    strategy:
      kind: cascade
      tiers: [[stories], [stories-again]]
      confidence: {{signal: logprobs, threshold: {threshold!r}}}"""
PROMPT = [{"role": "user", "content": "Once upon a time"}]
# Greedy and unpenalised: the same answer, with the same logprobs, every time.
GREEDY = {"temperature": 0, "max_tokens": 20, "repeat_penalty": 1.0}


@pytest.fixture(scope="module")
def llama() -> Iterator[str]:
    with llama_server() as url:
        yield url


def router(llama: str, thresholds: dict[str, float]) -> tuple[Router, MemorySink]:
    models = "".join(MODEL.format(name=n, llama=llama) for n in ("stories", "stories-again"))
    routes = "".join(ROUTE.format(name=n, threshold=t) for n, t in thresholds.items())
    policy = load_policy_text(f"version: llama-confidence\nmodels:{models}\nroutes:{routes}\n")
    sink = MemorySink()
    return Router(policy, api_keys={}, sink=sink), sink


def implied(logprobs: list[Any]) -> float:
    """The logprobs signal's definition: the geometric mean probability of the tokens."""
    values = [
        float(item["logprob"] if isinstance(item, dict) else item.logprob) for item in logprobs
    ]
    return math.exp(sum(values) / len(values))


async def test_the_recorded_confidence_is_what_the_answers_logprobs_imply(llama: str) -> None:
    cascade, sink = router(llama, {"lenient": 0.0})
    async with serve_router(cascade) as url:
        client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        try:
            raw = await client.chat.completions.with_raw_response.create(
                model="lenient",
                messages=PROMPT,  # type: ignore[arg-type]
                logprobs=True,
                temperature=0,
                max_tokens=20,
                extra_body={"repeat_penalty": 1.0},
            )
        finally:
            await client.close()
    answer = raw.parse()
    assert raw.headers["x-modelroute-model"] == "stories"  # accepted at the first tier
    served = answer.choices[0].logprobs
    assert served is not None and served.content
    [record] = sink.records
    assert record.escalations == 0 and record.attempts[0].outcome == "ok"
    # The logprobs the client received are the server's, and they give the recorded value.
    assert record.attempts[0].confidence == pytest.approx(implied(served.content), rel=1e-12)
    assert record.confidence == record.attempts[0].confidence
    assert 0 < (record.confidence or 0) < 1


async def test_the_cascade_escalates_exactly_below_the_threshold(llama: str) -> None:
    # What the first tier is asked, sent to the server directly: its logprobs, its confidence.
    asked = {"model": "stories260k", "messages": PROMPT, **GREEDY, "stream": False}
    asked |= {"logprobs": True, "top_logprobs": 5}
    async with httpx.AsyncClient(timeout=60) as http:
        reply = (await http.post(f"{llama}/v1/chat/completions", json=asked)).json()
    confidence = implied(reply["choices"][0]["logprobs"]["content"])
    assert 0 < confidence < 1
    thresholds = {
        "below": confidence - 1e-6,
        "at": confidence,  # at the threshold is accepted
        "just-above": math.nextafter(confidence, 1.0),
        "above": confidence + 1e-6,
    }
    cascade, _ = router(llama, thresholds)
    try:
        for route, threshold in thresholds.items():
            result = await cascade.chat({"model": route, "messages": PROMPT, **GREEDY})
            first, record = result.record.attempts[0], result.record
            assert first.confidence == confidence, route  # the same answer, the same value
            escalated = confidence < threshold
            assert record.escalations == int(escalated), route
            assert first.outcome == ("low_confidence" if escalated else "ok"), route
            assert record.final_model == ("stories-again" if escalated else "stories"), route
    finally:
        await cascade.aclose()
