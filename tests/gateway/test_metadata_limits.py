"""Per-request limits in ``metadata``, under the names the README documents (the headers'
names) and the short field names, through the gateway with the ``openai`` SDK; a limit-like
key that is no limit is noted in the decision rather than silently ignored."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from .fixtures import POLICY, sdk_client, sim_config
from .harness import gateway

MESSAGES: Any = [{"role": "user", "content": "hello"}]
ALL = {"primary", "secondary", "claude"}


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("x-modelroute-max-cost-usd", "0.0000001", "over_cost_ceiling"),
        ("max_cost_usd", "0.0000001", "over_cost_ceiling"),
        ("x-modelroute-max-latency-ms", "1", "over_latency_budget"),
        ("max_latency_ms", 1, "over_latency_budget"),
        ("x-modelroute-min-quality", "0.99", "below_min_quality"),
        ("min_quality", 0.99, "below_min_quality"),
    ],
)
async def test_a_limit_in_metadata_tightens_the_route(key: str, value: Any, reason: str) -> None:
    async with gateway(POLICY, sim_config()) as gw:
        with pytest.raises(openai.UnprocessableEntityError) as caught:
            await sdk_client(gw).chat.completions.create(
                model="chat", messages=MESSAGES, metadata={key: value}
            )
        body = caught.value.body
        assert isinstance(body, dict)
        rejections = body["rejections"]
        assert {r["model"] for r in rejections} == ALL
        assert {r["reason"] for r in rejections} == {reason}


async def test_a_header_wins_over_metadata() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        reply = await sdk_client(gw).chat.completions.with_raw_response.create(
            model="chat",
            messages=MESSAGES,
            metadata={"x-modelroute-max-cost-usd": "0.0000001"},
            extra_headers={"x-modelroute-max-cost-usd": "1"},
        )
        record = gw.record(reply.headers["x-modelroute-request-id"])
        assert record.decision is not None
        assert record.decision["limits"]["max_cost_usd"] == 1


async def test_unread_limit_like_keys_are_noted_in_the_decision() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        reply = await sdk_client(gw).chat.completions.with_raw_response.create(
            model="chat",
            messages=MESSAGES,
            metadata={"x-modelroute-max-cost": "0.0000001", "max_costusd": "0", "team": "a"},
            extra_headers={"x-modelroute-min-qual": "0.99"},
        )
        assert reply.parse().choices[0].message.content == "primary answer"  # not limited
        record = gw.record(reply.headers["x-modelroute-request-id"])
        assert record.decision is not None
        assert record.decision["limits"]["max_cost_usd"] is None
        notes = record.decision["notes"]
        assert len(notes) == 3, notes
        assert (
            "header 'x-modelroute-min-qual' looks like a limit but is not one; ignored; "
            "did you mean 'x-modelroute-min-quality'?"
        ) in notes
        assert (
            "metadata key 'x-modelroute-max-cost' looks like a limit but is not one; ignored; "
            "did you mean 'x-modelroute-max-cost-usd'?"
        ) in notes
        assert any(
            n.startswith("metadata key 'max_costusd'") and "'max_cost_usd'" in n for n in notes
        )


async def test_a_bad_limit_in_metadata_is_a_400_naming_the_key() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk_client(gw).chat.completions.create(
                model="chat", messages=MESSAGES, metadata={"x-modelroute-min-quality": "high"}
            )
        assert "metadata.x-modelroute-min-quality must be a number" in caught.value.message
