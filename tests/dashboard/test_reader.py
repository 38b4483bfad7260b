"""Every ``Dashboard`` method on both stores: the figures it shows equal the raw rows'."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest

from modelroute.dashboard import Dashboard
from modelroute.dashboard.reader import default_step
from modelroute.dashboard.snapshots import refresh
from modelroute.outcomes import Outcome, OutcomeSource
from modelroute.policy import Policy, load_policy_text
from modelroute.records.rollups import representative
from modelroute.records.stores.base import Store
from modelroute.records.writer import RecordWriter

from ..records.conftest import make_store
from .traffic import HASHES, T0, close, nearest_rank, traffic

POLICY = """\
version: "dash-1"
models:
  small: {provider: simulator, base_url: "http://127.0.0.1:1/v1", model_id: small-v1,
          allow_floating: true, prices: {input: 0.15, output: 0.6}, context_window: 16000,
          latency: {p50_ms: 30, p95_ms: 80}, quality: {chat: 0.82}}
  large: {provider: simulator, base_url: "http://127.0.0.1:1/v1", model_id: large-v1,
          allow_floating: true, prices: {input: 2.5, output: 10}, context_window: 128000,
          latency: {p50_ms: 120, p95_ms: 300}, quality: {chat: 0.93}}
routes:
  chat:
    constraints: {max_cost_usd: 0.01, min_quality: 0.8}
    strategy: {kind: cheapest_qualified, models: [small, large]}
  unused:
    strategy: {kind: fixed, models: [large]}
"""
N = 1500
UNTIL = T0 + 4 * 3600.0


@pytest.fixture
def policy() -> Policy:
    return load_policy_text(POLICY, "dash.yaml")


async def seeded(store: Store) -> list:  # type: ignore[type-arg]
    records = traffic(N, seed=21)
    for i in range(0, N, 400):
        await store.write(records[i : i + 400])
    return records


async def test_overview_matches_the_records(store: Store) -> None:
    records = await seeded(store)
    since = T0 - 600.0
    view = await Dashboard(store).overview(since, UNTIL, 300)
    assert view.buckets[0] == since and len(view.buckets) == len(view.total.points)
    assert view.total.total.requests == N
    assert view.total.total.errors == sum(r.status != "ok" for r in records)
    assert view.total.total.spend_usd == pytest.approx(sum(r.cost_usd for r in records))
    fell_back = sum(r.final_model not in (None, r.decision["chosen"]) and not r.escalations
                    for r in records)  # fmt: skip
    assert view.total.total.fallbacks == fell_back
    for point in view.total.points:  # every bucket, from the records in it
        inside = [r for r in records if point.at <= r.started_at < point.at + 300]
        assert point.requests == len(inside)
        if inside:
            exact = nearest_rank([r.latency_ms for r in inside], 0.95)
            assert close(point.p95_latency_ms, exact)
        else:
            assert point.p95_latency_ms is None and point.error_rate is None
    by_route = {s.key: s.total.requests for s in view.by_route}
    assert by_route == dict(Counter(r.route for r in records))
    assert {s.key: s.total.requests for s in view.by_model} == dict(
        Counter(r.final_model for r in records)
    )
    shares = {s.route: s.share for s in view.spend_share}
    assert sum(shares.values()) == pytest.approx(1.0)
    chat = sum(r.cost_usd for r in records if r.route == "chat")
    assert shares["chat"] == pytest.approx(chat / sum(r.cost_usd for r in records))
    # whole hours are read from the hourly rollups: the same totals
    hourly = await Dashboard(store).overview(T0 - 3600.0, UNTIL, 3600)
    assert hourly.total.total.requests == N
    assert [p.requests for p in hourly.total.points] == [
        sum(1 for r in records if at <= r.started_at < at + 3600) for at in hourly.buckets
    ]


async def test_overview_refuses_bad_ranges(store: Store) -> None:
    dash = Dashboard(store)
    with pytest.raises(ValueError, match="step must be whole minutes"):
        await dash.overview(T0, UNTIL, 90)
    with pytest.raises(ValueError, match="must be after since"):
        await dash.overview(UNTIL, T0)
    with pytest.raises(ValueError, match="at most"):
        await dash.overview(T0, T0 + 86_400 * 30, 60)
    assert default_step(T0, T0 + 86_400) == 360
    assert default_step(T0, T0 + 86_400 * 30) == 3 * 3600


async def test_routes_match_the_records(store: Store, policy: Policy) -> None:
    records = await seeded(store)
    scores = [0.9] * 40 + [0.5] * 10
    await store.add_outcomes([
        Outcome(source=OutcomeSource.EVAL, grader="exact", score=s, model="small",
                created_at=T0 + i, route="chat", reported_model="small-v1", prompt_id=f"p{i}")
        for i, s in enumerate(scores)
    ])  # fmt: skip
    since = T0 + 1234.0  # not on an hour: minutes at the ends, hours in between
    view = await Dashboard(store, policy).routes(since, UNTIL)
    inside = [r for r in records if int(since // 60) * 60 <= r.started_at < UNTIL]
    routes = {v.route: v for v in view.routes}
    assert routes["unused"].requests == 0 and routes["unused"].policy is not None
    chat = routes["chat"]
    mine = [r for r in inside if r.route == "chat"]
    assert chat.requests == len(mine)
    assert {m.model: m.requests for m in chat.mix} == dict(Counter(r.final_model for r in mine))
    assert chat.cost_per_request == pytest.approx(sum(r.cost_usd for r in mine) / len(mine))
    rejected = Counter((j["model"], j["reason"]) for r in mine for j in r.decision["rejections"])
    assert {(x.candidate, x.reason): x.requests for x in chat.rejections} == dict(rejected)
    assert chat.policy is not None and chat.policy.min_quality == 0.8
    assert [c.model for c in chat.policy.candidates] == ["small", "large"]
    (quality,) = chat.quality
    assert (quality.model, quality.n, quality.enough) == ("small", 50, True)
    assert quality.mean == pytest.approx(0.82)
    assert quality.low is not None and quality.low < 0.82 < quality.high  # type: ignore[operator]
    assert routes[None].policy is None  # requests without a route
    # quality is kept for quality_ttl_s: a new outcome shows once that has passed
    now = [0.0]
    chat_q = lambda v: next(r for r in v.routes if r.route == "chat").quality[0].n  # noqa: E731
    dash = Dashboard(store, policy, quality_ttl_s=60.0, clock=lambda: now[0])
    assert chat_q(await dash.routes(since, UNTIL)) == 50
    await store.add_outcomes([Outcome(source=OutcomeSource.EVAL, grader="exact", score=1.0,
                                      model="small", created_at=T0, route="chat",
                                      reported_model="small-v1", prompt_id="late")])  # fmt: skip
    assert chat_q(await dash.routes(since, UNTIL)) == 50
    now[0] = 60.0
    assert chat_q(await dash.routes(since, UNTIL)) == 51


async def test_search_pages_through_newest_first(store: Store) -> None:
    records = await seeded(store)
    dash = Dashboard(store)
    seen, before = [], None
    while True:
        page = await dash.search(route="triage", limit=97, before=before)
        seen += [row.request_id for row in page.rows]
        if page.next_before is None:
            break
        before = page.next_before
    triage = sorted((r for r in records if r.route == "triage"),
                    key=lambda r: (r.started_at, r.request_id), reverse=True)  # fmt: skip
    assert seen == [r.request_id for r in triage]
    failed = await dash.search(status="failed", model=None, since=T0, until=T0 + 3600, limit=500)
    assert {r.request_id for r in failed.rows} == {
        r.request_id for r in records if r.status == "failed" and T0 <= r.started_at < T0 + 3600
    }
    one = await dash.search(request_id=records[5].request_id)
    assert [r.request_id for r in one.rows] == [records[5].request_id]
    assert one.rows[0].served in ("first", "fallback", "escalated", None)
    for bad in ("nonsense", "nan,req", "1.5,"):
        with pytest.raises(ValueError, match="bad page cursor"):
            await dash.search(before=bad)
    with pytest.raises(ValueError, match="limit"):
        await dash.search(limit=0)


async def test_one_request_in_full(store: Store) -> None:
    records = await seeded(store)
    r = next(r for r in records if r.escalations and r.route and r.decision["rejections"])
    await store.add_feedback(r.request_id, 0.25, "bad", "human", "wrong label")
    await store.add_outcomes([Outcome(source=OutcomeSource.FEEDBACK, grader="human",
                                      score=0.25, model=str(r.final_model), created_at=T0,
                                      route=r.route, request_id=r.request_id)])  # fmt: skip
    got = await Dashboard(store).request(r.request_id)
    assert got is not None
    assert got.served == "escalated" and got.escalations == 1
    assert [c.model for c in got.candidates] == [c["model"] for c in r.decision["tiers"][0]]
    assert [(j.model, j.reason, j.value, j.limit) for j in got.rejections] == [
        (j["model"], j["reason"], j["value"], j["limit"]) for j in r.decision["rejections"]
    ]
    assert [(a.model, a.failure, a.latency_ms) for a in got.attempts] == [
        (a.model, a.failure, a.latency_ms) for a in r.attempts
    ]
    assert got.attempts[-1].reported_model == r.attempts[-1].reported_model
    assert [(f.score, f.comment) for f in got.feedback] == [(0.25, "wrong label")]
    assert [(o.source, o.score) for o in got.outcomes] == [("feedback", 0.25)]
    assert got.limits["min_quality"] == 0.7
    assert await Dashboard(store).request("no-such-request") is None


async def test_policy_versions_and_texts(
    store_target: Path | str, tmp_path: Path, policy: Policy
) -> None:
    store = make_store(store_target)
    writer = RecordWriter(store, tmp_path / "spool")
    writer.remember_policy(policy.hash, policy.version, policy.source, policy.text or "")
    await writer.start()
    try:
        records = traffic(300, seed=2)
        for r in records:
            writer.submit(r)
        await writer.close()
        dash = Dashboard(store, policy)
        versions = {v.hash: v for v in await dash.policies()}
        for h in HASHES:
            mine = [r.started_at for r in records if r.policy_hash == h]
            v = versions[h]
            assert (v.requests, v.first_seen, v.last_seen) == (len(mine), min(mine), max(mine))
            assert not v.has_text and not v.in_force
        assert versions[HASHES[1]].version == "v2"
        stored = versions[policy.hash]
        assert stored.in_force and stored.has_text and stored.requests == 0
        text = await dash.policy_text(policy.hash)
        assert text is not None and text.text == POLICY and text.version == "dash-1"
        assert await dash.policy_text("sha256:unknown") is None
        assert not await store.remember_policy(policy.hash, "x", "y", "z")  # kept once
    finally:
        await store.close()


async def test_snapshots_are_computed_stored_and_read(store: Store, policy: Policy) -> None:
    await seeded(store)
    dash = Dashboard(store, policy)
    assert await dash.audit_latest() is None and await dash.drift_latest() is None
    made = await refresh(store, policy, now=UNTIL)
    assert [s.kind for s in made] == ["audit", "drift"]
    audit, drift = await dash.audit_latest(), await dash.drift_latest()
    assert audit is not None and drift is not None
    assert audit.computed_at == UNTIL and audit.headline == made[0].headline
    assert audit.data["totals"]["requests"] == N
    assert "findings" in drift.data and drift.text
    assert orjson.loads(orjson.dumps(audit.data)) == made[0].data
    later = await refresh(store, policy, kinds=["drift"], now=UNTIL + 60)
    latest = await dash.drift_latest()
    assert latest is not None and latest.computed_at == later[0].computed_at
    with pytest.raises(ValueError, match="unknown snapshot kind"):
        await refresh(store, kinds=["nope"])  # type: ignore[list-item]


def test_representative_is_inside_its_bucket() -> None:
    assert 10 <= representative(9) < 10 ** (9 / 8)
