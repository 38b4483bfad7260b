"""A canary on a real ``modelroute serve``: its share of callers within the binomial
interval, each caller sticky to one arm, records tagged with the arm and its policy's hash;
``modelroute compare`` on what it served, and on a seeded store."""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path

import httpx
import pytest
from scipy import stats

from modelroute.policy import load_policy
from modelroute.records.record import RequestRecord, RequestStatus
from modelroute.records.stores import open_store

from .support import modelroute, serving
from .test_reload import _stored, _variant

N, SHARE = 200, 20.0


def test_canary_share_stickiness_and_arm_tags(tmp_path: Path) -> None:
    from ..serve_process import quickstart_policy

    policy, _ = quickstart_policy(tmp_path)
    canary = tmp_path / "canary.yaml"
    canary.write_text(_variant(policy, "canary", 0.3))
    hashes = {"baseline": load_policy(policy).hash, "canary": load_policy(canary).hash}
    assert hashes["baseline"] != hashes["canary"]
    args = ("--canary", str(canary), "--canary-percent", str(SHARE), "--canary-sticky",
            "field:user")  # fmt: skip
    ids: dict[str, list[str]] = {}
    with serving(tmp_path, *args, policy=policy) as gw, httpx.Client(timeout=60) as client:
        status, body = gw.admin("GET", "/admin/policy")
        assert status == 200 and body["canary"]["hash"] == hashes["canary"]
        users = [f"user-{n}" for n in range(N)] + ["sticky"] * 10
        for user in users:
            r = client.post(
                f"{gw.base}/v1/chat/completions",
                json={"model": "chat", "user": user,
                      "messages": [{"role": "user", "content": "hi"}]},
            )  # fmt: skip
            assert r.status_code == 200
            ids.setdefault(user, []).append(r.headers["x-modelroute-request-id"])
        # rolled back through the admin API: every request on the baseline again
        status, body = gw.admin("DELETE", "/admin/policy/canary")
        assert status == 200 and body["canary"] is None
    records = {r["request_id"]: r for r in _stored(gw.store, [i for v in ids.values() for i in v])}
    arm_of = {u: {records[i]["arm"] for i in v} for u, v in ids.items()}
    assert arm_of["sticky"] in ({"baseline"}, {"canary"})  # one caller, one arm
    for record in records.values():
        assert record["policy_hash"] == hashes[record["arm"]]
    canaries = sum(1 for u in ids if u != "sticky" and arm_of[u] == {"canary"})
    low, high = stats.binom.interval(0.999, N, SHARE / 100)
    assert low <= canaries <= high, (canaries, low, high)
    done = modelroute("compare", "--since", "1d", "--store", gw.store, "--json")
    assert done.returncode == 0, done.stderr
    arms = json.loads(done.stdout)["arms"]
    sticky_arm = next(iter(arm_of["sticky"]))
    assert arms["canary"]["requests"] == canaries + (10 if sticky_arm == "canary" else 0)
    assert arms["baseline"]["requests"] + arms["canary"]["requests"] == N + 10


def _record(n: int, arm: str, now: float, rng: random.Random) -> RequestRecord:
    failed = rng.random() < (0.1 if arm == "canary" else 0.02)
    return RequestRecord(
        request_id=f"0190a0a0-0000-7000-8000-{n:012d}", started_at=now - 3600 + n,
        route="chat", policy_hash=f"{arm}-hash", arm=arm, final_model="small",
        status=RequestStatus.FAILED if failed else RequestStatus.OK,
        http_status=502 if failed else 200, cost_usd=0.001 if arm == "baseline" else 0.002,
        latency_ms=100 + rng.random() * 50,
    )  # fmt: skip


def test_compare_on_a_seeded_store(tmp_path: Path) -> None:
    store_path = str(tmp_path / "seeded.db")
    rng = random.Random(5)
    now = time.time()
    records = [_record(n, "baseline" if n % 4 else "canary", now, rng) for n in range(400)]
    records.append(_record(999, "baseline", now - 5 * 86400, rng))  # outside --since 1d

    async def seed(rated: int) -> None:
        store = open_store(store_path)
        await store.open()
        await store.write(records)
        for r in records[:rated]:
            score = 0.9 if r.arm == "baseline" else 0.6
            await store.add_feedback(r.request_id, score + rng.random() * 0.1, None, "user", None)
        await store.close()

    asyncio.run(seed(rated=20))  # 15 baseline, 5 canary ratings: not enough for the canary
    text = modelroute("compare", "--since", "1d", "--store", store_path)
    assert text.returncode == 0, text.stderr
    assert "requests        300" in text.stdout and "100" in text.stdout
    assert "not enough evidence (n=5 rated)" in text.stdout
    assert "quality difference: not enough evidence" in text.stdout
    asyncio.run(seed(rated=0))  # (records are idempotent) add ratings to the canary too
    more = [r for r in records if r.arm == "canary"][5:15]

    async def rate() -> None:
        store = open_store(store_path)
        await store.open()
        for r in more:
            await store.add_feedback(r.request_id, 0.6, None, "user", None)
        await store.close()

    asyncio.run(rate())
    done = modelroute("compare", "--since", "1d", "--store", store_path, "--json")
    data = json.loads(done.stdout)
    base, canary = data["arms"]["baseline"], data["arms"]["canary"]
    assert (base["requests"], canary["requests"]) == (300, 100)
    assert canary["cost_usd"]["mean"] == pytest.approx(0.002) and canary["cost_usd"]["low"] is None
    assert canary["error_rate"]["low"] < canary["error_rate"]["mean"] < canary["error_rate"]["high"]
    diff = data["quality_difference"]
    assert diff is not None and diff["high"] < 0  # the canary is measurably worse
