"""The fault matrix through the real gateway: every failure class, plain and streamed.

Each test starts the upstream simulator and the gateway under uvicorn on real sockets, sends
requests with the official ``openai`` SDK (``max_retries=0``, so every retry seen is the
gateway's) or with httpx for raw SSE, and checks three things: what the client got, what the
simulator received, and the request record (one per client request, with every attempt in
order). Faults are scripted per model, so every outcome is deterministic; timeouts are a few
hundred milliseconds so the file stays fast.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import httpx
import openai
import orjson
import pytest

from modelroute.records.record import RequestRecord
from modelroute.state.breakers import BreakerSettings

from .fixtures import sim_config
from .harness import Gateway, gateway

POLICY = """
version: faults-1
defaults:
  timeouts: {attempt_ms: 1500, total_ms: 4000}
  retries: {max_attempts: 1, backoff_ms: 5, max_backoff_ms: 20}
models:
  primary:
    provider: simulator
    base_url: "{sim}"
    model_id: primary-sim
    allow_floating: true
    prices: {input: 1.0, output: 2.0}
    context_window: 4000
    capabilities: [logprobs]
    latency: {p50_ms: 20, p95_ms: 50}
  mid:
    provider: simulator
    base_url: "{sim}"
    model_id: mid-sim
    allow_floating: true
    prices: {input: 1.0, output: 2.0}
    context_window: 2000
    latency: {p50_ms: 20, p95_ms: 50}
  secondary:
    provider: openai
    base_url: "{sim}"
    model_id: secondary-sim
    allow_floating: true
    prices: {input: 3.0, output: 6.0}
    context_window: 64000
    capabilities: [logprobs]
    latency: {p50_ms: 30, p95_ms: 80}
  claude:
    provider: anthropic
    base_url: "{sim_root}"
    model_id: claude-sim
    allow_floating: true
    prices: {input: 0.8, output: 4.0}
    context_window: 200000
    latency: {p50_ms: 40, p95_ms: 90}
routes:
  chat:
    strategy: {kind: fixed, models: [primary, secondary]}
  claude-first:
    strategy: {kind: fixed, models: [claude, secondary]}
  everything:
    strategy: {kind: fixed, models: [primary, secondary]}
    fallbacks: [claude]
  once:
    retries: {max_attempts: 0}
    strategy: {kind: fixed, models: [primary, secondary]}
  quick:
    retries: {max_attempts: 0}
    timeouts: {attempt_ms: 250, total_ms: 3000}
    strategy: {kind: fixed, models: [primary, secondary]}
  tight:
    retries: {max_attempts: 0}
    timeouts: {attempt_ms: 250, total_ms: 400}
    strategy: {kind: fixed, models: [primary, secondary]}
  patient:
    retries: {max_attempts: 1, backoff_ms: 5, max_backoff_ms: 10, on: [rate_limited]}
    timeouts: {attempt_ms: 1000, total_ms: 3000}
    strategy: {kind: fixed, models: [primary, secondary]}
  impatient:
    retries: {max_attempts: 1, backoff_ms: 5, max_backoff_ms: 10, on: [rate_limited]}
    timeouts: {attempt_ms: 600, total_ms: 600}
    strategy: {kind: fixed, models: [primary, secondary]}
  long:
    strategy: {kind: fixed, models: [primary, mid, secondary]}
  late-switch:
    retries: {max_attempts: 0}
    timeouts: {attempt_ms: 300, total_ms: 3000}
    strategy: {kind: fixed, models: [mid, primary, secondary]}
  hedged:
    hedge_after_ms: 100
    retries: {max_attempts: 0}
    strategy: {kind: fixed, models: [primary, secondary]}
  triage:
    strategy:
      kind: cascade
      tiers: [[primary], [secondary]]
      confidence: {signal: logprobs, threshold: 0.6}
"""

FRANCE = "What is the capital of France?"  # primary answers "Paris" (one token)
STORY = "Tell me a story."  # the default answers
LONG_STORY = "one two three four five six seven eight"


def _sim(**overrides: dict[str, Any]) -> dict[str, Any]:
    """The shared simulated upstreams plus ``mid-sim``; each override is merged into one
    model's config."""
    config = sim_config()
    config["models"]["mid-sim"] = {"context_window": 2000, "default_answer": "mid answer"}
    for name, changes in overrides.items():
        config["models"][name] = {**config["models"][name], **changes}
    return config


def _client(gw: Gateway) -> openai.AsyncOpenAI:
    client = openai.AsyncOpenAI(base_url=gw.base_url, api_key="client-key", max_retries=0)
    gw.closing(client)
    return client


def _messages(text: str) -> Any:
    return [{"role": "user", "content": text}]


def _trail(record: RequestRecord) -> list[tuple[str, str, str | None]]:
    """(model, outcome, failure class) of every attempt, in order."""
    return [(a.model, a.outcome, a.failure) for a in record.attempts]


def _body_trail(error: openai.APIStatusError) -> list[tuple[str, str, str | None]]:
    assert isinstance(error.body, dict), error.body
    return [(a["model"], a["outcome"], a["failure"]) for a in error.body["attempts"]]


async def _ask(
    gw: Gateway, route: str, text: str = FRANCE, *, stream: bool = False, **extra: Any
) -> tuple[str, RequestRecord, httpx.Headers]:
    """One request through the SDK: the answer text, its record and the response headers.
    A streamed answer is read to its end."""
    client = _client(gw)
    if not stream:
        raw = await client.chat.completions.with_raw_response.create(
            model=route, messages=_messages(text), **extra
        )
        completion = raw.parse()
        content = completion.choices[0].message.content or ""
    else:
        raw = await client.chat.completions.with_raw_response.create(
            model=route, messages=_messages(text), stream=True, **extra
        )
        content = ""
        async for chunk in raw.parse():
            if chunk.choices:
                content += chunk.choices[0].delta.content or ""
    return content, gw.record(raw.headers["x-modelroute-request-id"]), raw.headers


async def _fail(
    gw: Gateway, route: str, text: str = FRANCE, *, stream: bool = False, **extra: Any
) -> tuple[openai.APIStatusError, RequestRecord]:
    """A request that must fail before its first byte: the SDK's error and the record."""
    client = _client(gw)
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(
            model=route, messages=_messages(text), stream=stream, **extra
        )
    error = caught.value
    record = gw.record(error.response.headers["x-modelroute-request-id"])
    assert record.http_status == error.status_code  # the record says what the client got
    return error, record


def _one_record_each(gw: Gateway, requests: int) -> None:
    records = gw.records()
    assert len(records) == requests
    assert len({r.request_id for r in records}) == requests


# -- retryable classes: retried on the same model, then the next candidate --------------------

RETRYABLE = [
    # simulator fault, failure class, upstream HTTP status (None: no response at all)
    ("server_error", "server_error", 500),
    ("overloaded", "overloaded", 503),
    ("rate_limited", "rate_limited", 429),
    ("reset", "server_error", None),
    ("disconnect_mid_stream", "server_error", None),  # before any content: falls back
]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(("fault", "cls", "status"), RETRYABLE, ids=[r[0] for r in RETRYABLE])
async def test_retryable_failure_is_retried_then_falls_back(
    fault: str, cls: str, status: int | None, stream: bool
) -> None:
    sim = _sim(**{"primary-sim": {"script": [fault, fault], "retry_after_s": 0.05}})
    async with gateway(POLICY, sim) as gw:
        answer, record, headers = await _ask(gw, "chat", stream=stream)
        assert answer == "secondary answer"
        assert headers["x-modelroute-model"] == "secondary"
        assert headers["x-modelroute-attempts"] == "3"
        assert _trail(record) == [
            ("primary", "failed", cls),
            ("primary", "failed", cls),
            ("secondary", "ok", None),
        ]
        assert [a.status for a in record.attempts[:2]] == [status, status]
        assert record.status == "ok" and record.final_model == "secondary"
        assert record.streamed is stream
        assert gw.sim.stats() == {"primary-sim": {fault: 2}, "secondary-sim": {"ok": 1}}
        _one_record_each(gw, 1)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_anthropic_529_overloaded_is_retried_then_falls_back(stream: bool) -> None:
    sim = _sim(**{"claude-sim": {"script": ["overloaded", "overloaded"]}})
    async with gateway(POLICY, sim) as gw:
        answer, record, _ = await _ask(gw, "claude-first", stream=stream)
        assert answer == "secondary answer"
        assert _trail(record) == [
            ("claude", "failed", "overloaded"),
            ("claude", "failed", "overloaded"),
            ("secondary", "ok", None),
        ]
        assert [a.status for a in record.attempts[:2]] == [529, 529]
        _one_record_each(gw, 1)


ALL_FAIL = [
    # simulator fault, failure class, status the client gets
    ("server_error", "server_error", 502),
    ("overloaded", "overloaded", 503),
    ("rate_limited", "rate_limited", 503),
]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(("fault", "cls", "http_status"), ALL_FAIL, ids=[r[0] for r in ALL_FAIL])
async def test_all_candidates_failing_lists_every_attempt_in_order(
    fault: str, cls: str, http_status: int, stream: bool
) -> None:
    scripted = {"script": [fault, fault], "retry_after_s": 0.05}
    sim = _sim(**{name: scripted for name in ("primary-sim", "secondary-sim", "claude-sim")})
    async with gateway(POLICY, sim) as gw:
        error, record = await _fail(gw, "everything", stream=stream)
        assert error.status_code == http_status
        expected = [
            (model, "failed", cls) for model in ("primary", "secondary", "claude") for _ in (1, 2)
        ]
        assert _body_trail(error) == expected
        assert isinstance(error.body, dict) and error.body["code"] == cls
        assert error.response.headers["x-modelroute-attempts"] == "6"
        if fault == "rate_limited":
            assert error.response.headers["retry-after"] == "1"
        else:
            assert "retry-after" not in error.response.headers
        assert _trail(record) == expected
        assert record.status == "failed" and record.failure == cls
        assert record.final_model is None
        _one_record_each(gw, 1)


# -- Retry-After -----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_retry_after_is_waited_out_when_the_deadline_allows(stream: bool) -> None:
    sim = _sim(**{"primary-sim": {"script": ["rate_limited"], "retry_after_s": 1}})
    async with gateway(POLICY, sim) as gw:
        answer, record, _ = await _ask(gw, "patient", stream=stream)
        assert answer == "Paris"
        assert _trail(record) == [("primary", "failed", "rate_limited"), ("primary", "ok", None)]
        first, retry = record.attempts
        assert first.retry_after_s == 1.0
        # Backoff alone is at most 10 ms on this route: the wait is the provider's.
        assert 1000 <= retry.started_ms - first.started_ms < 1500
        _one_record_each(gw, 1)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_retry_after_beyond_the_deadline_falls_back_at_once(stream: bool) -> None:
    sim = _sim(**{"primary-sim": {"script": ["rate_limited"], "retry_after_s": 1}})
    async with gateway(POLICY, sim) as gw:
        answer, record, _ = await _ask(gw, "impatient", stream=stream)
        assert answer == "secondary answer"
        assert _trail(record) == [
            ("primary", "failed", "rate_limited"),
            ("secondary", "ok", None),
        ]
        first, fallback = record.attempts
        assert fallback.started_ms - first.started_ms < 250  # no sleeping on a lost cause
        assert record.latency_ms < 500
        assert gw.sim.stats()["primary-sim"] == {"rate_limited": 1}
        _one_record_each(gw, 1)


# -- timeouts and deadlines -------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("fault", ["hang", "timeout"])
async def test_attempt_timeout_falls_back(fault: str, stream: bool) -> None:
    # "timeout" answers 50 x its latency late: 1 s, well past the route's 250 ms per attempt.
    slow = {"script": [fault], "latency_ms": {"p50": 20}}
    async with gateway(POLICY, _sim(**{"primary-sim": slow})) as gw:
        answer, record, _ = await _ask(gw, "quick", stream=stream)
        assert answer == "secondary answer"
        assert _trail(record) == [("primary", "failed", "timeout"), ("secondary", "ok", None)]
        assert 240 <= record.attempts[0].latency_ms < 600
        assert record.attempts[1].started_ms >= 240
        _one_record_each(gw, 1)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_total_deadline_exhausted_is_504(stream: bool) -> None:
    hung = {"script": ["hang"]}
    async with gateway(POLICY, _sim(**{"primary-sim": hung, "secondary-sim": hung})) as gw:
        began = time.monotonic()
        error, record = await _fail(gw, "tight", stream=stream)
        elapsed = time.monotonic() - began
        assert error.status_code == 504
        assert isinstance(error.body, dict) and error.body["code"] == "timeout"
        expected = [("primary", "failed", "timeout"), ("secondary", "failed", "timeout")]
        assert _body_trail(error) == expected
        assert _trail(record) == expected
        # The second attempt only gets what is left of the 400 ms deadline, not 250 ms.
        assert record.attempts[1].latency_ms < 240
        assert 0.39 <= elapsed < 0.8
        assert record.status == "failed" and record.failure == "timeout"
        _one_record_each(gw, 1)


# -- failures after the first byte of a stream -----------------------------------------------


@pytest.mark.parametrize("fault", ["disconnect_mid_stream", "stream_error"])
async def test_failure_after_first_content_ends_the_stream_with_an_error(fault: str) -> None:
    primary = {"script": [fault], "default_answer": LONG_STORY}
    async with gateway(POLICY, _sim(**{"primary-sim": primary})) as gw:
        client = _client(gw)
        raw = await client.chat.completions.with_raw_response.create(
            model="chat", messages=_messages(STORY), stream=True
        )
        assert raw.status_code == 200  # committed: the status left with the first byte
        received = ""
        with pytest.raises(openai.APIError) as caught:
            async for chunk in raw.parse():
                if chunk.choices:
                    received += chunk.choices[0].delta.content or ""
        assert not isinstance(caught.value, openai.APIConnectionError)
        assert isinstance(caught.value.body, dict)
        assert caught.value.body["code"] == "server_error"
        assert received == "one two three"  # the part sent before the fault, nothing after
        record = gw.record(raw.headers["x-modelroute-request-id"])
        assert record.status == "stream_error" and record.failure == "server_error"
        assert record.final_model == "primary"
        assert _trail(record) == [("primary", "failed", "server_error")]
        assert record.answer == "one two three"
        assert "secondary-sim" not in gw.sim.stats()  # no fallback once committed
        _one_record_each(gw, 1)


async def test_stall_after_first_content_ends_the_stream_with_a_timeout_error() -> None:
    # Two tokens a second: the second word comes 500 ms after the first, past the route's
    # 250 ms limit on silence.
    primary = {"default_answer": LONG_STORY, "tokens_per_second": 2}
    async with gateway(POLICY, _sim(**{"primary-sim": primary})) as gw:
        stream = await _client(gw).chat.completions.create(
            model="quick", messages=_messages(STORY), stream=True
        )
        received = ""
        with pytest.raises(openai.APIError) as caught:
            async for chunk in stream:
                if chunk.choices:
                    received += chunk.choices[0].delta.content or ""
        assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "timeout"
        assert received == "one"
        [record] = gw.records()
        assert record.status == "stream_error" and record.failure == "timeout"
        assert record.http_status == 200
        assert _trail(record) == [("primary", "failed", "timeout")]
        assert "secondary-sim" not in gw.sim.stats()


async def test_client_leaving_mid_stream_leaves_one_cancelled_record() -> None:
    primary = {"default_answer": LONG_STORY, "tokens_per_second": 20}
    async with gateway(POLICY, _sim(**{"primary-sim": primary})) as gw:
        async with (
            httpx.AsyncClient(timeout=10) as http,
            http.stream(
                "POST",
                f"{gw.base_url}/chat/completions",
                json={"model": "chat", "messages": _messages(STORY), "stream": True},
            ) as response,
        ):
            request_id = response.headers["x-modelroute-request-id"]
            async for line in response.aiter_lines():
                if '"one"' in line:
                    break  # and hang up
        for _ in range(100):  # the gateway notices at its next write (tokens are 50 ms apart)
            if gw.records():
                break
            await asyncio.sleep(0.01)
        [record] = gw.records()
        assert record.request_id == request_id
        assert record.status == "cancelled" and record.error == "the client went away"
        assert record.answer is not None and LONG_STORY.startswith(record.answer)
        assert record.answer != LONG_STORY


async def test_stream_error_event_on_the_wire() -> None:
    primary = {"script": ["disconnect_mid_stream"], "default_answer": LONG_STORY}
    async with gateway(POLICY, _sim(**{"primary-sim": primary})) as gw:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                f"{gw.base_url}/chat/completions",
                json={"model": "chat", "messages": _messages(STORY), "stream": True},
            )
        assert response.status_code == 200
        events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
        assert "[DONE]" not in events
        error = orjson.loads(events[-1])["error"]
        assert error["code"] == "server_error" and error["message"]
        contents = [orjson.loads(e)["choices"][0]["delta"].get("content") for e in events[:-1]]
        assert "".join(c or "" for c in contents) == "one two three"
        [record] = gw.records()
        assert record.status == "stream_error"
        assert record.request_id == response.headers["x-modelroute-request-id"]


# -- answers that arrive but are not answers ---------------------------------------------------

BROKEN = [("malformed_json", "invalid_response"), ("empty_content", "empty_response")]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(("fault", "cls"), BROKEN, ids=[b[0] for b in BROKEN])
async def test_broken_answer_falls_back(fault: str, cls: str, stream: bool) -> None:
    async with gateway(POLICY, _sim(**{"primary-sim": {"script": [fault]}})) as gw:
        answer, record, _ = await _ask(gw, "chat", stream=stream)
        assert answer == "secondary answer"
        # Not a retryable class: straight to the next candidate.
        assert _trail(record) == [("primary", "failed", cls), ("secondary", "ok", None)]
        assert record.final_model == "secondary" and record.status == "ok"
        _one_record_each(gw, 1)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_empty_answers_everywhere_are_an_error_never_a_success(stream: bool) -> None:
    empty = {"script": ["empty_content"]}
    async with gateway(POLICY, _sim(**{"primary-sim": empty, "secondary-sim": empty})) as gw:
        error, record = await _fail(gw, "chat", stream=stream)
        assert error.status_code == 502
        expected = [
            ("primary", "failed", "empty_response"),
            ("secondary", "failed", "empty_response"),
        ]
        assert _body_trail(error) == expected
        assert _trail(record) == expected
        assert record.status == "failed" and record.failure == "empty_response"
        _one_record_each(gw, 1)


# -- context length ---------------------------------------------------------------------------

# ~140 tokens by the simulator's estimate: over a 50-token window, well within the policy's.
LONG_PROMPT = "Summarise this: " + "lorem ipsum dolor sit amet " * 20


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_context_overflow_skips_to_a_larger_window(stream: bool) -> None:
    small = {"context_window": 50}
    async with gateway(POLICY, _sim(**{"primary-sim": small, "mid-sim": small})) as gw:
        answer, record, _ = await _ask(gw, "long", LONG_PROMPT, stream=stream)
        assert answer == "secondary answer"
        assert record.decision is not None
        assert record.decision["order"] == ["primary", "mid", "secondary"]
        assert _trail(record) == [
            ("primary", "failed", "context_length"),  # not retried: it would overflow again
            ("mid", "skipped", None),  # 2000 tokens is not larger than primary's 4000
            ("secondary", "ok", None),
        ]
        assert record.attempts[0].status == 400
        assert "mid-sim" not in gw.sim.stats()
        _one_record_each(gw, 1)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_context_overflow_everywhere_is_400(stream: bool) -> None:
    small = {"context_window": 50}
    sim = _sim(**{"primary-sim": small, "secondary-sim": small})
    async with gateway(POLICY, sim) as gw:
        error, record = await _fail(gw, "long", LONG_PROMPT, stream=stream)
        assert isinstance(error, openai.BadRequestError)
        assert isinstance(error.body, dict) and error.body["code"] == "context_length"
        assert _trail(record) == [
            ("primary", "failed", "context_length"),
            ("mid", "skipped", None),
            ("secondary", "failed", "context_length"),
        ]
        _one_record_each(gw, 1)


# -- fail fast --------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_auth_failure_fails_fast_with_502(stream: bool) -> None:
    sim = {**_sim(), "api_key": "sk-the-right-one"}  # the gateway sends sk-test
    async with gateway(POLICY, sim) as gw:
        error, record = await _fail(gw, "chat", stream=stream)
        assert error.status_code == 502
        assert isinstance(error.body, dict) and error.body["code"] == "auth"
        assert _body_trail(error) == [("primary", "failed", "auth")]
        assert _trail(record) == [("primary", "failed", "auth")]
        assert record.attempts[0].status == 401
        assert gw.sim.stats() == {"primary-sim": {"unauthorized": 1}}  # no retry, no fallback
        _one_record_each(gw, 1)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_bad_request_fails_fast_with_400(stream: bool) -> None:
    async with gateway(POLICY, _sim()) as gw:
        # The gateway passes unknown and odd fields through; the upstream refuses this one.
        error, record = await _fail(gw, "chat", stream=stream, extra_body={"stop": 5})
        assert isinstance(error, openai.BadRequestError)
        assert isinstance(error.body, dict) and error.body["code"] == "bad_request"
        assert _body_trail(error) == [("primary", "failed", "bad_request")]
        assert _trail(record) == [("primary", "failed", "bad_request")]
        assert gw.sim.stats() == {"primary-sim": {"bad_request": 1}}
        _one_record_each(gw, 1)


# -- circuit breakers -------------------------------------------------------------------------


class ShiftedClock:
    """Monotonic time plus an offset the test moves forward: cooldowns pass without sleeping,
    while timeouts still run on real time."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


def _circuit_rejected(record: RequestRecord, model: str) -> bool:
    assert record.decision is not None
    return any(
        r["model"] == model and r["reason"] == "circuit_open" for r in record.decision["rejections"]
    )


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_open_circuit_skips_the_model_until_a_probe_succeeds(stream: bool) -> None:
    clock = ShiftedClock()
    settings = BreakerSettings(consecutive_failures=2, cooldown_s=30)
    sim = _sim(**{"primary-sim": {"script": ["server_error", "server_error"]}})
    async with gateway(POLICY, sim, clock=clock, breaker_settings=settings) as gw:
        for _ in range(2):
            _, record, _ = await _ask(gw, "once", stream=stream)
            assert _trail(record) == [
                ("primary", "failed", "server_error"),
                ("secondary", "ok", None),
            ]
        assert gw.router.breakers.state("primary") == "open"

        answer, record, _ = await _ask(gw, "once", stream=stream)
        assert answer == "secondary answer"
        assert _circuit_rejected(record, "primary")
        assert _trail(record) == [("secondary", "ok", None)]
        assert gw.sim.stats()["primary-sim"] == {"server_error": 2}  # not called while open

        clock.offset += 30  # the cooldown passes: one probe may go through
        assert gw.router.breakers.state("primary") == "half_open"
        answer, record, _ = await _ask(gw, "once", stream=stream)
        assert answer == "Paris"
        assert not _circuit_rejected(record, "primary")
        assert _trail(record) == [("primary", "ok", None)]
        assert gw.router.breakers.state("primary") == "closed"
        _one_record_each(gw, 4)


async def test_failed_probe_reopens_the_circuit() -> None:
    clock = ShiftedClock()
    settings = BreakerSettings(consecutive_failures=1, cooldown_s=30)
    sim = _sim(**{"primary-sim": {"script": ["server_error", "server_error"]}})
    async with gateway(POLICY, sim, clock=clock, breaker_settings=settings) as gw:
        await _ask(gw, "once")
        assert gw.router.breakers.state("primary") == "open"
        clock.offset += 30
        _, probe, _ = await _ask(gw, "once")
        assert _trail(probe) == [("primary", "failed", "server_error"), ("secondary", "ok", None)]
        assert gw.router.breakers.state("primary") == "open"  # one failed probe re-opens it
        _, after, _ = await _ask(gw, "once")
        assert _circuit_rejected(after, "primary")
        assert _trail(after) == [("secondary", "ok", None)]
        assert gw.sim.stats()["primary-sim"] == {"server_error": 2}
        _one_record_each(gw, 3)


async def test_probe_claimed_after_the_deadline_is_released() -> None:
    """A half-open model reached after the deadline passed is not called; its probe slot
    must stay free, or the model would be rejected as ``circuit_open`` for good."""
    clock = ShiftedClock()
    settings = BreakerSettings(consecutive_failures=1, cooldown_s=30)
    sim = _sim(
        **{
            "primary-sim": {"script": ["server_error", "hang"]},
            "secondary-sim": {"script": ["server_error"]},
        }
    )
    async with gateway(POLICY, sim, clock=clock, breaker_settings=settings) as gw:
        breakers = gw.router.breakers
        error, _ = await _fail(gw, "once")  # both fail: both circuits open
        assert error.status_code == 502
        clock.offset += 30  # both half-open
        late = asyncio.ensure_future(_fail(gw, "quick"))
        while gw.sim.stats()["primary-sim"].get("hang") is None:  # primary's probe is out
            await asyncio.sleep(0.005)
        clock.offset += 5  # the route's 3 s deadline passes while primary hangs
        error, record = await late
        assert error.status_code == 504
        assert _trail(record) == [("primary", "failed", "timeout")]  # secondary never called
        assert breakers.state("secondary") == "half_open"
        assert "secondary" not in breakers.open_models()  # its probe is still available
        answer, record, _ = await _ask(gw, "once")
        assert _circuit_rejected(record, "primary")  # re-opened by its failed probe
        assert answer == "secondary answer" and _trail(record) == [("secondary", "ok", None)]
        assert breakers.state("secondary") == "closed"
        _one_record_each(gw, 3)


async def test_circuit_opened_after_planning_is_skipped_by_the_engine() -> None:
    """Request A is planned while primary is healthy; while A waits on a hung first model,
    request B trips primary's breaker; A then skips primary instead of calling it."""
    settings = BreakerSettings(consecutive_failures=1, cooldown_s=30)
    sim = _sim(**{"mid-sim": {"script": ["hang"]}, "primary-sim": {"script": ["server_error"]}})
    async with gateway(POLICY, sim, breaker_settings=settings) as gw:
        first = asyncio.ensure_future(_ask(gw, "late-switch"))
        while "mid-sim" not in gw.sim.stats():  # A is planned and waiting on mid
            await asyncio.sleep(0.005)
        _, tripping, _ = await _ask(gw, "once")
        assert _trail(tripping) == [
            ("primary", "failed", "server_error"),
            ("secondary", "ok", None),
        ]
        answer, record, _ = await first
        assert answer == "secondary answer"
        assert not _circuit_rejected(record, "primary")  # it was closed at planning time
        assert [(a.model, a.outcome) for a in record.attempts] == [
            ("mid", "failed"),
            ("primary", "skipped"),
            ("secondary", "ok"),
        ]
        assert record.attempts[1].message == "circuit open"
        assert gw.sim.stats()["primary-sim"] == {"server_error": 1}
        _one_record_each(gw, 2)


# -- hedging ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_hedge_answers_from_the_faster_model(stream: bool) -> None:
    slow = {"latency_ms": {"p50": 800}, "ttft_ms": {"p50": 800}}
    async with gateway(POLICY, _sim(**{"primary-sim": slow})) as gw:
        answer, record, headers = await _ask(gw, "hedged", stream=stream)
        assert answer == "secondary answer"
        assert headers["x-modelroute-model"] == "secondary"
        assert _trail(record) == [("primary", "cancelled", None), ("secondary", "ok", None)]
        assert 100 <= record.attempts[1].started_ms < 400  # launched at the hedge time
        assert record.latency_ms < 700  # did not wait for the slow one
        assert gw.sim.stats() == {"primary-sim": {"ok": 1}, "secondary-sim": {"ok": 1}}
        _one_record_each(gw, 1)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_hedge_partner_is_still_the_fallback_when_the_first_fails_fast(stream: bool) -> None:
    async with gateway(POLICY, _sim(**{"primary-sim": {"script": ["server_error"]}})) as gw:
        answer, record, _ = await _ask(gw, "hedged", stream=stream)
        assert answer == "secondary answer"
        assert _trail(record) == [("primary", "failed", "server_error"), ("secondary", "ok", None)]
        # Fell back as soon as the first failed, without waiting for the hedge time.
        assert record.attempts[1].started_ms < 100
        _one_record_each(gw, 1)


# -- cascade escalation -----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_confident_answer_is_accepted_without_escalation(stream: bool) -> None:
    async with gateway(POLICY, _sim()) as gw:
        client = _client(gw)
        if stream:
            events = client.chat.completions.create(
                model="triage", messages=_messages(FRANCE), stream=True
            )
            chunks = [chunk async for chunk in await events]
            answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert all(c.choices[0].logprobs is None for c in chunks if c.choices)
        else:
            completion = await client.chat.completions.create(
                model="triage", messages=_messages(FRANCE)
            )
            answer = completion.choices[0].message.content or ""
            assert completion.choices[0].logprobs is None  # asked for by us, not the client
        assert answer == "Paris"
        [record] = gw.records()
        assert record.escalations == 0 and record.final_model == "primary"
        assert _trail(record) == [("primary", "ok", None)]
        assert record.attempts[0].confidence == pytest.approx(math.exp(-0.05))
        [sent] = gw.sim.requests()
        assert sent.body["logprobs"] is True and sent.body["stream"] is False


async def test_logprobs_the_client_asked_for_are_kept() -> None:
    async with gateway(POLICY, _sim()) as gw:
        completion = await _client(gw).chat.completions.create(
            model="triage", messages=_messages(FRANCE), logprobs=True
        )
        logprobs = completion.choices[0].logprobs
        assert logprobs is not None and logprobs.content
        assert logprobs.content[0].token == "Paris"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_low_confidence_answer_escalates_to_the_next_tier(stream: bool) -> None:
    async with gateway(POLICY, _sim()) as gw:
        answer, record, headers = await _ask(gw, "triage", "Are you unsure?", stream=stream)
        assert answer == "secondary answer"
        assert headers["x-modelroute-model"] == "secondary"
        assert "escalated 1" in headers["x-modelroute-reason"]
        assert record.escalations == 1 and record.final_model == "secondary"
        assert _trail(record) == [("primary", "low_confidence", None), ("secondary", "ok", None)]
        assert record.attempts[0].confidence == pytest.approx(math.exp(-2.0))
        # The last tier is asked exactly what the client asked: no logprobs added.
        last = gw.sim.requests()[-1]
        assert last.model == "secondary-sim" and "logprobs" not in last.body
        _one_record_each(gw, 1)


# -- one record per request, whatever happens --------------------------------------------------


class AtSubmit:
    """A record sink that notes what each record said when it was handed over: a sink may
    serialise it right away, so it must be complete by then."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int]] = []

    def submit(self, record: RequestRecord) -> None:
        self.seen.append((record.request_id, record.status, record.http_status))


async def test_every_request_yields_exactly_one_record() -> None:
    sim = _sim(
        **{
            "primary-sim": {
                "script": ["server_error", "server_error", "disconnect_mid_stream"],
                "default_answer": LONG_STORY,
            }
        }
    )
    at_submit = AtSubmit()
    async with gateway(POLICY, sim, extra_sinks=[at_submit]) as gw:
        ids: list[str] = []
        _, record, _ = await _ask(gw, "chat", STORY)  # fallback after two failures
        ids.append(record.request_id)
        client = _client(gw)
        stream = await client.chat.completions.create(
            model="chat", messages=_messages(STORY), stream=True
        )
        with pytest.raises(openai.APIError):  # failure after the first byte
            async for _ in stream:
                pass
        ids.append(gw.records()[-1].request_id)
        _, record = await _fail(gw, "chat", extra_body={"stop": 5})  # fail fast
        ids.append(record.request_id)
        with pytest.raises(openai.NotFoundError):  # no such route
            await client.chat.completions.create(model="nope", messages=_messages(STORY))
        ids.append(gw.records()[-1].request_id)
        results = await asyncio.gather(*(_ask(gw, "chat", STORY) for _ in range(5)))
        ids += [r[1].request_id for r in results]
        _one_record_each(gw, 9)
        assert {r.request_id for r in gw.records()} == set(ids)
        final = [(r.request_id, r.status, r.http_status) for r in gw.records()]
        assert at_submit.seen == final  # submitted once each, already complete
        assert [(status, http) for _, status, http in final] == [
            ("ok", 200),
            ("stream_error", 200),  # the 200 had left with the first byte
            ("failed", 400),
            ("rejected", 404),
            *[("ok", 200)] * 5,
        ]
