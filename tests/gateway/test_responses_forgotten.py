"""An upstream that keeps its responses (the simulator with ``keep_responses``) is sent the
previous response's id; once it has forgotten that response (expired or deleted there) it
refuses the id (``previous_response_not_found``), and the gateway resends the turn to it at
once with the whole stored conversation instead, recording both attempts."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute.engine.walk import RESENT_WHOLE
from modelroute.records.record import AttemptResult

from .fixtures import sdk_client, sim_config
from .harness import Gateway, gateway
from .test_responses_stored import FRANCE, POLICY, conversation_sent, upstream_bodies

ANSWER = "secondary answer"  # what the served route's upstream answers


def keeping() -> dict[str, Any]:
    return {**sim_config(), "keep_responses": True}


async def turn(gw: Gateway, text: str, previous: str | None, stream: bool) -> Any:
    client = sdk_client(gw)
    extra = {} if previous is None else {"previous_response_id": previous}
    if not stream:
        return await client.responses.create(model="served", input=text, **extra)
    async with client.responses.stream(model="served", input=text, **extra) as events:
        return await events.get_final_response()


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_a_forgotten_previous_response_is_resent_whole(stream: bool) -> None:
    async with gateway(POLICY, keeping()) as gw:
        first = await turn(gw, FRANCE, None, stream)
        assert first.store is True  # the upstream kept it
        second = await turn(gw, "And of Spain?", first.id, stream)
        named = upstream_bodies(gw)[-1]
        assert named["previous_response_id"] == first.id and named["input"] == "And of Spain?"
        gw.sim.forget_responses()  # expired or deleted upstream
        third = await turn(gw, "And of Italy?", second.id, stream)
        assert third.status == "completed" and third.output_text == ANSWER
        refused, resent = upstream_bodies(gw)[-2:]
        assert refused["previous_response_id"] == second.id
        assert conversation_sent("served", resent) == [
            ("user", FRANCE), ("assistant", ANSWER), ("user", "And of Spain?"),
            ("assistant", ANSWER), ("user", "And of Italy?"),
        ]  # fmt: skip
        outcomes = [r.outcome for r in gw.sim.requests() if r.endpoint == "/v1/responses"]
        assert outcomes[-2:] == ["bad_request", "ok"]
        record = gw.records()[-1]
        assert record.http_status == 200 and record.final_model == "native"
        failed, answered = record.attempts
        assert (failed.model, failed.failure, failed.status) == (
            "native", "previous_response_unknown", 400,
        )  # fmt: skip
        assert failed.outcome is AttemptResult.FAILED
        assert answered.outcome is AttemptResult.OK and answered.message == RESENT_WHOLE
        # the resent turn is stored whole: the next turn names it to the upstream again
        await turn(gw, "And of Germany?", third.id, stream)
        assert upstream_bodies(gw)[-1]["previous_response_id"] == third.id


async def test_an_id_the_gateway_never_stored_is_still_a_400() -> None:
    async with gateway(POLICY, keeping()) as gw:
        client = sdk_client(gw)
        with pytest.raises(Exception) as caught:
            await client.responses.create(
                model="served", input="hi", previous_response_id="resp_never"
            )
        assert getattr(caught.value, "code", None) == "previous_response_not_found"
        assert upstream_bodies(gw) == []  # refused at the door: nothing to resend
