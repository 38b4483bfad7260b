"""The gateway ``serve --state redis://...`` builds, with that Redis down: the stored
responses' endpoints answer 503 and an answered response goes unstored, and each time is
counted at ``/metrics`` in ``modelroute_state_errors_total{operation="stored_responses"}``
(``closed``: refused; ``skipped``: not stored)."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelroute import load_policy_text
from modelroute.serve import build_app
from modelroute.testing import Simulator

from .fixtures import sim_config
from .harness import serve_app
from .test_responses_stored import FRANCE, POLICY

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens there


def stored_response_errors(text: str) -> dict[str, float]:
    """``modelroute_state_errors_total`` of the stored responses, by outcome."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "modelroute_state_errors_total"
                and sample.labels.get("operation") == "stored_responses"
            ):
                out[sample.labels["outcome"]] = sample.value
    return out


async def test_an_unreachable_responses_store_is_counted_at_metrics(tmp_path: Path) -> None:
    async with Simulator(sim_config()) as sim:
        text = POLICY.replace("{sim}", sim.openai_base_url).replace("{sim_root}", sim.base_url)
        policy = load_policy_text(text, "p.yaml")
        app = build_app(
            policy,
            store_url=None,
            spool_dir=str(tmp_path / "spool"),
            content="truncated",
            traces="off",
            snapshots_every_s=None,
            state_url=DEAD_REDIS,
        )
        async with (
            serve_app(app) as url,
            openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client,
            httpx.AsyncClient(base_url=url, timeout=10) as http,
        ):
            before = stored_response_errors((await http.get("/metrics")).text)
            assert before == {}
            answered = await client.responses.create(model="bridged", input=FRANCE)
            assert answered.output_text == "Paris"  # answered; only the storing failed
            refused = 0
            for read in (client.responses.retrieve, client.responses.delete):
                with pytest.raises(openai.InternalServerError) as caught:
                    await read(answered.id)
                assert caught.value.status_code == 503
                refused += 1
            with pytest.raises(openai.InternalServerError):
                await client.responses.create(
                    model="bridged", input="again", previous_response_id=answered.id
                )
            refused += 1
            counted = stored_response_errors((await http.get("/metrics")).text)
    assert counted == {"skipped": 1.0, "closed": float(refused)}
