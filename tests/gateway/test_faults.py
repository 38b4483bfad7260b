"""The fault matrix through the real gateway: every failure class, plain and streamed.

Each test starts the upstream simulator and the gateway under uvicorn on real sockets, sends
requests with the official ``openai`` SDK (``max_retries=0``, so every retry seen is the
gateway's) or with httpx for raw SSE, and checks three things: what the client got, what the
simulator received, and the request record (one per client request, with every attempt in
order). Faults are scripted per model, so every outcome is deterministic; timeouts are a few
hundred milliseconds so the file stays fast. The engine's behaviour itself (exact retry
times, Retry-After, deadlines, breakers, hedging, cascades) is tested in process, on virtual
time, in tests/engine/; these tests check the same failures arrive and leave correctly over
the wire.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import orjson
import pytest

from modelroute.records.record import RequestRecord

from .faults_support import (
    LONG_STORY,
    POLICY,
    STORY,
    ask,
    body_trail,
    fail,
    one_record_each,
    scripted_sim,
    sdk_client,
    trail,
    user_messages,
)
from .harness import gateway

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
    sim = scripted_sim(**{"primary-sim": {"script": [fault, fault], "retry_after_s": 0.05}})
    async with gateway(POLICY, sim) as gw:
        answer, record, headers = await ask(gw, "chat", stream=stream)
        assert answer == "secondary answer"
        assert headers["x-modelroute-model"] == "secondary"
        assert headers["x-modelroute-attempts"] == "3"
        assert trail(record) == [
            ("primary", "failed", cls),
            ("primary", "failed", cls),
            ("secondary", "ok", None),
        ]
        assert [a.status for a in record.attempts[:2]] == [status, status]
        assert record.status == "ok" and record.final_model == "secondary"
        assert record.streamed is stream
        assert gw.sim.stats() == {"primary-sim": {fault: 2}, "secondary-sim": {"ok": 1}}
        one_record_each(gw, 1)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_anthropic_529_overloaded_is_retried_then_falls_back(stream: bool) -> None:
    sim = scripted_sim(**{"claude-sim": {"script": ["overloaded", "overloaded"]}})
    async with gateway(POLICY, sim) as gw:
        answer, record, _ = await ask(gw, "claude-first", stream=stream)
        assert answer == "secondary answer"
        assert trail(record) == [
            ("claude", "failed", "overloaded"),
            ("claude", "failed", "overloaded"),
            ("secondary", "ok", None),
        ]
        assert [a.status for a in record.attempts[:2]] == [529, 529]
        one_record_each(gw, 1)


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
    sim = scripted_sim(
        **{name: scripted for name in ("primary-sim", "secondary-sim", "claude-sim")}
    )
    async with gateway(POLICY, sim) as gw:
        error, record = await fail(gw, "everything", stream=stream)
        assert error.status_code == http_status
        expected = [
            (model, "failed", cls) for model in ("primary", "secondary", "claude") for _ in (1, 2)
        ]
        assert body_trail(error) == expected
        assert isinstance(error.body, dict) and error.body["code"] == cls
        assert error.response.headers["x-modelroute-attempts"] == "6"
        if fault == "rate_limited":
            assert error.response.headers["retry-after"] == "1"
        else:
            assert "retry-after" not in error.response.headers
        assert trail(record) == expected
        assert record.status == "failed" and record.failure == cls
        assert record.final_model is None
        one_record_each(gw, 1)


# -- timeouts and deadlines -------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("fault", ["hang", "timeout"])
async def test_attempt_timeout_falls_back(fault: str, stream: bool) -> None:
    # "timeout" answers 50 x its latency late: 1 s, well past the route's 250 ms per attempt.
    slow = {"script": [fault], "latency_ms": {"p50": 20}}
    async with gateway(POLICY, scripted_sim(**{"primary-sim": slow})) as gw:
        answer, record, _ = await ask(gw, "quick", stream=stream)
        assert answer == "secondary answer"
        assert trail(record) == [("primary", "failed", "timeout"), ("secondary", "ok", None)]
        assert record.attempts[0].latency_ms >= 240  # exact timings: tests/engine/
        assert record.attempts[1].started_ms >= 240
        one_record_each(gw, 1)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_total_deadline_exhausted_is_504(stream: bool) -> None:
    hung = {"script": ["hang"]}
    async with gateway(POLICY, scripted_sim(**{"primary-sim": hung, "secondary-sim": hung})) as gw:
        began = time.monotonic()
        error, record = await fail(gw, "tight", stream=stream)
        elapsed = time.monotonic() - began
        assert error.status_code == 504
        assert isinstance(error.body, dict) and error.body["code"] == "timeout"
        expected = [("primary", "failed", "timeout"), ("secondary", "failed", "timeout")]
        assert body_trail(error) == expected
        assert trail(record) == expected
        assert elapsed >= 0.39  # the whole deadline; how it is shared: tests/engine/
        assert record.status == "failed" and record.failure == "timeout"
        one_record_each(gw, 1)


# -- failures after the first byte of a stream -----------------------------------------------


@pytest.mark.parametrize("fault", ["disconnect_mid_stream", "stream_error"])
async def test_failure_after_first_content_ends_the_stream_with_an_error(fault: str) -> None:
    primary = {"script": [fault], "default_answer": LONG_STORY}
    async with gateway(POLICY, scripted_sim(**{"primary-sim": primary})) as gw:
        client = sdk_client(gw)
        raw = await client.chat.completions.with_raw_response.create(
            model="chat", messages=user_messages(STORY), stream=True
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
        assert trail(record) == [("primary", "failed", "server_error")]
        assert record.answer == "one two three"
        assert "secondary-sim" not in gw.sim.stats()  # no fallback once committed
        one_record_each(gw, 1)


async def test_stall_after_first_content_ends_the_stream_with_a_timeout_error() -> None:
    # Two tokens a second: the second word comes 500 ms after the first, past the route's
    # 250 ms limit on silence.
    primary = {"default_answer": LONG_STORY, "tokens_per_second": 2}
    async with gateway(POLICY, scripted_sim(**{"primary-sim": primary})) as gw:
        stream = await sdk_client(gw).chat.completions.create(
            model="quick", messages=user_messages(STORY), stream=True
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
        assert trail(record) == [("primary", "failed", "timeout")]
        assert "secondary-sim" not in gw.sim.stats()


async def test_client_leaving_mid_stream_leaves_one_cancelled_record() -> None:
    primary = {"default_answer": LONG_STORY, "tokens_per_second": 20}
    async with gateway(POLICY, scripted_sim(**{"primary-sim": primary})) as gw:
        async with (
            httpx.AsyncClient(timeout=10) as http,
            http.stream(
                "POST",
                f"{gw.base_url}/chat/completions",
                json={"model": "chat", "messages": user_messages(STORY), "stream": True},
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
    async with gateway(POLICY, scripted_sim(**{"primary-sim": primary})) as gw:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                f"{gw.base_url}/chat/completions",
                json={"model": "chat", "messages": user_messages(STORY), "stream": True},
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
    async with gateway(POLICY, scripted_sim(**{"primary-sim": {"script": [fault]}})) as gw:
        answer, record, _ = await ask(gw, "chat", stream=stream)
        assert answer == "secondary answer"
        # Not a retryable class: straight to the next candidate.
        assert trail(record) == [("primary", "failed", cls), ("secondary", "ok", None)]
        assert record.final_model == "secondary" and record.status == "ok"
        one_record_each(gw, 1)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_empty_answers_everywhere_are_an_error_never_a_success(stream: bool) -> None:
    empty = {"script": ["empty_content"]}
    async with gateway(
        POLICY, scripted_sim(**{"primary-sim": empty, "secondary-sim": empty})
    ) as gw:
        error, record = await fail(gw, "chat", stream=stream)
        assert error.status_code == 502
        expected = [
            ("primary", "failed", "empty_response"),
            ("secondary", "failed", "empty_response"),
        ]
        assert body_trail(error) == expected
        assert trail(record) == expected
        assert record.status == "failed" and record.failure == "empty_response"
        one_record_each(gw, 1)


# -- context length ---------------------------------------------------------------------------

# ~140 tokens by the simulator's estimate: over a 50-token window, well within the policy's.
LONG_PROMPT = "Summarise this: " + "lorem ipsum dolor sit amet " * 20


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_context_overflow_skips_to_a_larger_window(stream: bool) -> None:
    small = {"context_window": 50}
    async with gateway(POLICY, scripted_sim(**{"primary-sim": small, "mid-sim": small})) as gw:
        answer, record, _ = await ask(gw, "long", LONG_PROMPT, stream=stream)
        assert answer == "secondary answer"
        assert record.decision is not None
        assert record.decision["order"] == ["primary", "mid", "secondary"]
        assert trail(record) == [
            ("primary", "failed", "context_length"),  # not retried: it would overflow again
            ("mid", "skipped", None),  # 2000 tokens is not larger than primary's 4000
            ("secondary", "ok", None),
        ]
        assert record.attempts[0].status == 400
        assert "mid-sim" not in gw.sim.stats()
        one_record_each(gw, 1)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_context_overflow_everywhere_is_400(stream: bool) -> None:
    small = {"context_window": 50}
    sim = scripted_sim(**{"primary-sim": small, "secondary-sim": small})
    async with gateway(POLICY, sim) as gw:
        error, record = await fail(gw, "long", LONG_PROMPT, stream=stream)
        assert isinstance(error, openai.BadRequestError)
        assert isinstance(error.body, dict) and error.body["code"] == "context_length"
        assert trail(record) == [
            ("primary", "failed", "context_length"),
            ("mid", "skipped", None),
            ("secondary", "failed", "context_length"),
        ]
        one_record_each(gw, 1)


# -- fail fast --------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_auth_failure_fails_fast_with_502(stream: bool) -> None:
    sim = {**scripted_sim(), "api_key": "sk-the-right-one"}  # the gateway sends sk-test
    async with gateway(POLICY, sim) as gw:
        error, record = await fail(gw, "chat", stream=stream)
        assert error.status_code == 502
        assert isinstance(error.body, dict) and error.body["code"] == "auth"
        assert body_trail(error) == [("primary", "failed", "auth")]
        assert trail(record) == [("primary", "failed", "auth")]
        assert record.attempts[0].status == 401
        assert gw.sim.stats() == {"primary-sim": {"unauthorized": 1}}  # no retry, no fallback
        one_record_each(gw, 1)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_bad_request_fails_fast_with_400(stream: bool) -> None:
    async with gateway(POLICY, scripted_sim()) as gw:
        # The gateway passes unknown and odd fields through; the upstream refuses this one.
        error, record = await fail(gw, "chat", stream=stream, extra_body={"stop": 5})
        assert isinstance(error, openai.BadRequestError)
        assert isinstance(error.body, dict) and error.body["code"] == "bad_request"
        assert body_trail(error) == [("primary", "failed", "bad_request")]
        assert trail(record) == [("primary", "failed", "bad_request")]
        assert gw.sim.stats() == {"primary-sim": {"bad_request": 1}}
        one_record_each(gw, 1)


# -- one record per request, whatever happens --------------------------------------------------


class AtSubmit:
    """A record sink that notes what each record said when it was handed over: a sink may
    serialise it right away, so it must be complete by then."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int]] = []

    def submit(self, record: RequestRecord) -> None:
        self.seen.append((record.request_id, record.status, record.http_status))


async def test_every_request_yields_exactly_one_record() -> None:
    sim = scripted_sim(
        **{
            "primary-sim": {
                "script": ["server_error", "server_error", "disconnect_mid_stream"],
                "default_answer": LONG_STORY,
            }
        }
    )
    at_submit = AtSubmit()
    async with gateway(POLICY, sim, sinks=[at_submit]) as gw:
        ids: list[str] = []
        _, record, _ = await ask(gw, "chat", STORY)  # fallback after two failures
        ids.append(record.request_id)
        client = sdk_client(gw)
        stream = await client.chat.completions.create(
            model="chat", messages=user_messages(STORY), stream=True
        )
        with pytest.raises(openai.APIError):  # failure after the first byte
            async for _ in stream:
                pass
        ids.append(gw.records()[-1].request_id)
        _, record = await fail(gw, "chat", extra_body={"stop": 5})  # fail fast
        ids.append(record.request_id)
        with pytest.raises(openai.NotFoundError):  # no such route
            await client.chat.completions.create(model="nope", messages=user_messages(STORY))
        ids.append(gw.records()[-1].request_id)
        results = await asyncio.gather(*(ask(gw, "chat", STORY) for _ in range(5)))
        ids += [r[1].request_id for r in results]
        one_record_each(gw, 9)
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
