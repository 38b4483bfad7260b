"""Feedback joins quality to records; rolling stats from the records feed the planner.

Feedback steers routing, so it must not be a lever for anyone: one request counts once, only
its caller (or the holder of the feedback token) may rate it, and measured quality replaces a
prior only once enough distinct requests were rated. The quickstart's own policy is the
subject, on each record store.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from modelroute.records.stores.base import Store
from modelroute.records.stores.postgres import PostgresStore
from modelroute.records.stores.sqlite import SqliteStore

from ..conftest import EXAMPLES
from ..records.conftest import pg_cluster, pg_url  # noqa: F401  (fixtures)
from .fixtures import POLICY, ask, sim_config
from .harness import Gateway, gateway


async def test_feedback_is_validated_and_joined() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.post(
                f"{gw.base_url}/chat/completions", json={"model": "chat", **ask()}
            )
            request_id = answer.headers["x-modelroute-request-id"]
            ok = await http.post(
                f"{gw.base_url}/feedback",
                json={"request_id": request_id, "score": 0.25, "source": "user", "comment": "meh"},
            )
            labelled = await http.post(
                f"{gw.base_url}/feedback", json={"request_id": request_id, "label": "thumbs_up"}
            )
            unknown = await http.post(
                f"{gw.base_url}/feedback", json={"request_id": "no-such-request", "score": 1}
            )
            bad = [
                await http.post(f"{gw.base_url}/feedback", json=body)
                for body in (
                    {"score": 1},
                    {"request_id": request_id},
                    {"request_id": request_id, "score": 2},
                    {"request_id": request_id, "score": 1, "extra": 1},
                    [1],
                )
            ]
        assert ok.status_code == 200 and ok.json() == {"ok": True, "request_id": request_id}
        assert labelled.status_code == 200
        assert unknown.status_code == 404
        for response in bad:
            assert response.status_code == 400, response.text
            assert response.json()["error"]["message"]
        window = gw.router.rolling._by_route[("chat", "primary")]
        assert dict(window.scores) == {request_id: 1.0}  # the latest replaced the earlier
        # A label with no score value replaces the score too: the request no longer counts.
        async with httpx.AsyncClient(timeout=10) as http:
            unscored = await http.post(
                f"{gw.base_url}/feedback", json={"request_id": request_id, "label": "odd"}
            )
        assert unscored.status_code == 200 and dict(window.scores) == {}


async def test_measured_quality_and_latency_reach_the_planner() -> None:
    policy = POLICY.replace("defaults:\n", "defaults:\n  quality: {min_samples: 10}\n", 1)
    async with gateway(policy, sim_config()) as gw:
        gw.router.rolling.refresh_s = 0.0
        async with httpx.AsyncClient(timeout=10) as http:
            ids = []
            for _ in range(20):
                response = await http.post(
                    f"{gw.base_url}/chat/completions", json={"model": "chat", **ask()}
                )
                ids.append(response.headers["x-modelroute-request-id"])
            for request_id in ids[:10]:
                await http.post(
                    f"{gw.base_url}/feedback", json={"request_id": request_id, "score": 0.3}
                )
            await asyncio.sleep(0)
            snapshot = gw.router.stats_snapshot()
            measured = snapshot.by_route[("chat", "primary")]
            assert measured.quality == pytest.approx(0.3) and measured.samples == 20
            assert measured.quality_samples == 10
            assert measured.latency_p95_ms is not None and measured.latency_p95_ms > 0
            # The prior said 0.9; the measured 0.3 now fails a 0.5 bar set by the client.
            gated = await http.post(
                f"{gw.base_url}/chat/completions",
                json={"model": "chat", **ask()},
                headers={"x-modelroute-min-quality": "0.5"},
            )
        assert gated.headers["x-modelroute-model"] == "secondary"
        record = gw.record(gated.headers["x-modelroute-request-id"])
        assert record.decision is not None
        [rejection] = [r for r in record.decision["rejections"] if r["model"] == "primary"]
        assert rejection["reason"] == "below_min_quality" and rejection["detail"] == "measured"
        chosen = record.decision["tiers"][0][0]
        assert chosen["model"] == "secondary"


# --- feedback cannot steer routing ---------------------------------------------------------

QUICKSTART = (EXAMPLES / "quickstart.yaml").read_text()
QUICKSTART_SIM = yaml.safe_load((EXAMPLES / "simulator" / "quickstart.yaml").read_text())
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


def quickstart(extra_defaults: str = "") -> str:
    """The quickstart policy with its models at the test's simulator (which it starts itself
    under ``modelroute serve``)."""
    text = QUICKSTART.split("\ndefaults:\n", 1)[1]  # drop the version and simulator blocks
    text = text.replace("http://127.0.0.1:8900/v1", "{sim}")
    return "defaults:\n" + extra_defaults + text


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store | None:
    if request.param == "memory":
        return None
    if request.param == "sqlite":
        return SqliteStore(tmp_path / "records.db")
    return PostgresStore(request.getfixturevalue("pg_url"))


async def _chat(gw: Gateway, key: str | None) -> tuple[str, str]:
    """One quickstart request, as the README's client makes it (or with no key at all, as
    curl does); (request id, model)."""
    if key is None:
        async with httpx.AsyncClient(timeout=10) as http:
            body = {"model": "chat", "messages": FRANCE}
            answer = await http.post(f"{gw.base_url}/chat/completions", json=body)
        answer.raise_for_status()
        return answer.headers["x-modelroute-request-id"], answer.headers["x-modelroute-model"]
    client = openai.AsyncOpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
    gw.closing(client)
    reply = await client.chat.completions.with_raw_response.create(model="chat", messages=FRANCE)
    return reply.headers["x-modelroute-request-id"], reply.headers["x-modelroute-model"]


async def _rate(
    http: httpx.AsyncClient, gw: Gateway, request_id: str, score: float, **headers: str
) -> httpx.Response:
    body = {"request_id": request_id, "score": score}
    return await http.post(f"{gw.base_url}/feedback", json=body, headers=headers)


def _candidate(gw: Gateway, request_id: str, model: str) -> dict[str, Any]:
    decision = gw.record(request_id).decision
    assert decision is not None
    [found] = [c for tier in decision["tiers"] for c in tier if c["model"] == model]
    return dict(found)


async def _stored_feedback(gw: Gateway, request_id: str) -> list[Any] | None:
    if gw.router.store is None:
        return None
    stored = await gw.router.store.get(request_id)
    assert stored is not None
    return [(f["score"], f["source"]) for f in stored["feedback"]]


async def test_thirty_ratings_of_one_request_do_not_flip_the_quickstart_route(
    store: Store | None,
) -> None:
    async with gateway(quickstart(), QUICKSTART_SIM, store=store) as gw:
        gw.router.rolling.refresh_s = 0.0
        rated, model = await _chat(gw, "unused")  # the README's client: api_key="unused"
        assert model == "small"
        async with httpx.AsyncClient(timeout=10) as http:
            anonymous = [await _rate(http, gw, rated, 0) for _ in range(30)]
            stranger = [
                await _rate(http, gw, rated, 0, authorization="Bearer someone-else")
                for _ in range(30)
            ]
            owner = [
                await _rate(http, gw, rated, 0, authorization="Bearer unused") for _ in range(30)
            ]
        # Thirty ratings of one request, from anyone: the route still serves the small model.
        after, model = await _chat(gw, "unused")
        assert model == "small"
        for response in anonymous:
            assert response.status_code == 401, response.text
            assert response.headers["www-authenticate"] == "Bearer"
            error = response.json()["error"]
            assert error["code"] == "missing_api_key" and "API key" in error["message"]
        for response in stranger:
            assert response.status_code == 403, response.text
            assert response.json()["error"]["code"] == "not_request_owner"
        assert all(r.status_code == 200 for r in owner)  # and they count as one sample
        small = _candidate(gw, after, "small")
        assert small["quality_source"] == "prior" and small["quality_samples"] == 1
        assert small["quality"] == pytest.approx(0.82)
        assert await _stored_feedback(gw, rated) in (None, [(0.0, None)])


async def test_the_owner_and_the_token_holder_are_heard_and_the_latest_rating_counts(
    store: Store | None,
) -> None:
    async with gateway(quickstart(), QUICKSTART_SIM, store=store, feedback_token="fb-t0k") as gw:
        rated, _ = await _chat(gw, "alice")
        keyless, _ = await _chat(gw, None)
        window = gw.router.rolling._by_route[("chat", "small")]
        async with httpx.AsyncClient(timeout=10) as http:
            # Alice's key, as her SDK sent it or as Anthropic's SDK would: the same caller.
            assert (await _rate(http, gw, rated, 0.2, authorization="Bearer alice")).is_success
            assert dict(window.scores) == {rated: 0.2}
            assert (await _rate(http, gw, rated, 0.9, **{"x-api-key": "alice"})).is_success
            assert dict(window.scores) == {rated: 0.9}
            assert await _stored_feedback(gw, rated) in (None, [(0.9, None)])
            # The token may rate any request, in either header; a wrong token is another key.
            by_token = await _rate(http, gw, rated, 0.4, authorization="Bearer fb-t0k")
            assert by_token.status_code == 200
            assert dict(window.scores) == {rated: 0.4}
            assert (await _rate(http, gw, keyless, 1.0, **{"x-api-key": "fb-t0k"})).is_success
            wrong = await _rate(http, gw, rated, 0.0, authorization="Bearer fb-t0k-guess")
            assert wrong.status_code == 403
            # A request made without a key: every caller without one is its caller.
            assert (await _rate(http, gw, keyless, 0.5)).is_success
            assert (
                await _rate(http, gw, keyless, 0.5, authorization="Bearer alice")
            ).status_code == 403
            assert (await _rate(http, gw, rated, 0.0)).status_code == 401
        assert dict(window.scores) == {rated: 0.4, keyless: 0.5}
        assert await _stored_feedback(gw, rated) in (None, [(0.4, None)])
        assert await _stored_feedback(gw, keyless) in (None, [(0.5, None)])


async def test_measured_quality_replaces_the_prior_from_min_samples_rated_requests() -> None:
    policy = quickstart("  quality: {min_samples: 5}\n")
    async with gateway(policy, QUICKSTART_SIM) as gw:
        gw.router.rolling.refresh_s = 0.0
        served = [await _chat(gw, "unused") for _ in range(5)]
        assert {model for _, model in served} == {"small"}
        async with httpx.AsyncClient(timeout=10) as http:
            for request_id, _ in served[:4]:
                assert (
                    await _rate(http, gw, request_id, 0.0, authorization="Bearer unused")
                ).is_success
            before, model = await _chat(gw, "unused")
            assert model == "small"  # four rated requests: one short, the prior holds
            small = _candidate(gw, before, "small")
            assert small["quality_source"] == "prior" and small["quality_samples"] == 4
            fifth = served[4][0]
            assert (await _rate(http, gw, fifth, 0.0, authorization="Bearer unused")).is_success
            after, model = await _chat(gw, "unused")
        assert model == "large"
        decision = gw.record(after).decision
        assert decision is not None
        [rejection] = [r for r in decision["rejections"] if r["model"] == "small"]
        assert rejection["reason"] == "below_min_quality" and rejection["detail"] == "measured"
