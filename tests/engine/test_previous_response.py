"""A Responses API turn that names its previous response to the model whose upstream kept it
(``RESPONSES_PREVIOUS``): when that upstream answers it no longer has it
(``previous_response_unknown``), the same model is sent the whole conversation at once,
once; on virtual time, plain and streamed, fixed and hedged routes."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from modelroute import AllAttemptsFailed, load_policy_text
from modelroute.engine.walk import RESENT_WHOLE
from modelroute.failures import FailureClass
from modelroute.records.record import MemorySink, RequestRecord
from modelroute.request_fields import RESPONSES_PREVIOUS, RESPONSES_REQUEST
from modelroute.router import Router
from modelroute.testing import Fail, Reply, ScriptedProvider

from .support import SEED, policy_text, starts, trail

STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
GONE = Fail(FailureClass.PREVIOUS_RESPONSE_UNKNOWN, latency_s=0.03)
WHOLE = [
    {"role": "user", "content": "hello"},
    {"role": "assistant", "content": "hi"},
    {"role": "user", "content": "next"},
]


def responses_router(provider: ScriptedProvider) -> Router:
    """The engine matrix's policy, its models serving the Responses API."""
    text = policy_text().replace("capabilities: [logprobs]", "capabilities: [logprobs, responses]")
    return Router(
        load_policy_text(text, "engine-matrix.yaml"),
        providers={"openai": provider},
        clock=asyncio.get_running_loop().time,
        rng=random.Random(SEED),
        api_keys={},
        sink=MemorySink(capacity=1_000),
    )


def turn(route: str, stream: bool, names: str | None = "primary") -> dict[str, Any]:
    """A turn carrying the whole conversation, naming the previous response to ``names``."""
    messages = [{"role": m["role"], "content": m["content"]} for m in WHOLE]
    request = {"model": route, "input": WHOLE}
    body: dict[str, Any] = {"model": route, "messages": messages, RESPONSES_REQUEST: request}
    if names is not None:
        named = {"model": route, "input": "next", "previous_response_id": "resp_1"}
        body[RESPONSES_PREVIOUS] = {"model": names, "request": named}
    if stream:
        body["stream"] = True
    return body


async def run(router: Router, body: dict[str, Any]) -> RequestRecord:
    if not body.get("stream"):
        return (await router.chat(body)).record
    opened = await router.stream(body)
    assert "".join([chunk.content async for chunk in opened])
    return opened.record


def sent_requests(provider: ScriptedProvider) -> list[dict[str, Any]]:
    return [call.body[RESPONSES_REQUEST] for call in provider.calls]


@STREAM
async def test_a_forgotten_previous_response_is_resent_whole_at_once(stream: bool) -> None:
    provider = ScriptedProvider({"primary": [GONE, Reply()]})
    record = await run(responses_router(provider), turn("chat", stream))
    assert trail(record) == [
        ("primary", "failed", "previous_response_unknown"), ("primary", "ok", None),
    ]  # fmt: skip
    assert starts(record) == [0.0, 30.0]  # no backoff: another request, not a retry
    assert record.attempts[1].message == RESENT_WHOLE and record.attempts[0].status == 400
    named, whole = sent_requests(provider)
    assert named["previous_response_id"] == "resp_1" and named["input"] == "next"
    assert "previous_response_id" not in whole and whole["input"] == WHOLE


@STREAM
async def test_the_resend_happens_once_and_an_unknown_id_otherwise_fails_fast(
    stream: bool,
) -> None:
    provider = ScriptedProvider({"primary": [GONE, GONE]})
    with pytest.raises(AllAttemptsFailed) as caught:
        await run(responses_router(provider), turn("chat", stream))
    assert caught.value.record is not None
    assert [a.model for a in caught.value.record.attempts] == ["primary", "primary"]
    assert caught.value.record.http_status == 400  # secondary never tried
    # a request that named the previous response to no model (a library caller's own id)
    alone = ScriptedProvider({"primary": GONE})
    with pytest.raises(AllAttemptsFailed) as caught:
        await run(responses_router(alone), turn("chat", stream, names=None))
    assert [(c.model, c.outcome) for c in alone.calls] == [("primary", "previous_response_unknown")]


async def test_a_hedged_route_resends_to_the_same_model() -> None:
    provider = ScriptedProvider({"primary": [GONE, Reply(latency_s=0.02)]})
    record = await run(responses_router(provider), turn("hedged", False))
    assert trail(record) == [
        ("primary", "failed", "previous_response_unknown"), ("primary", "ok", None),
    ]  # fmt: skip
    assert record.attempts[1].message == RESENT_WHOLE
    assert "previous_response_id" not in sent_requests(provider)[1]
