"""A policy change made on one of three replicas reaches the other two through the shared
state (``--state redis://...`` syncs policies too, with no ``--policy-sync`` given), under
load from a separate process: all three converge on one policy hash, their records carry it,
and no request is dropped."""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from modelroute.policy import load_policy_text

from ..serve_process import PATIENCE_S, get_json
from ..state.conftest import REDIS_URL
from .conftest import POLICY, Cluster, running_cluster

TOKEN = "adm-rollout-5d1c7e9a3b"


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("rollout")
    with running_cluster(
        tmp, POLICY, "--admin-token", "env:MR_ROLLOUT_ADMIN", env={"MR_ROLLOUT_ADMIN": TOKEN}
    ) as running:
        yield running


def post_policy(base: str, text: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base}/admin/policy",
        json.dumps({"policy": text}).encode(),
        {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def hashes(cluster: Cluster) -> list[str]:
    return [get_json(f"{b}/readyz")[1]["policy_hash"] for b in cluster.bases]


def test_a_reload_on_one_replica_converges_all_three_under_load(synced: Cluster) -> None:
    text = (synced.tmp / "policy.yaml").read_text()
    before = load_policy_text(text, "policy.yaml").hash
    assert hashes(synced) == [before] * 3
    changed = text.replace("version: replicas", "version: replicas-2").replace(
        "prices: {input: 1000, output: 2000}", "prices: {input: 900, output: 1800}", 1
    )
    after = load_policy_text(changed, "policy.yaml").hash
    assert after != before
    load = synced.start_load(route="plain", requests=900, concurrency=6, pause_s=0.01)
    assert load.stdout is not None
    seen = [load.stdout.readline() for _ in range(150)]
    assert post_policy(synced.bases[0], changed)["hash"] == after
    deadline = time.monotonic() + PATIENCE_S
    while hashes(synced) != [after] * 3:
        assert time.monotonic() < deadline, hashes(synced)
        time.sleep(0.05)
    converged_at = len(seen) + 1
    rest = load.stdout.read()  # not communicate(): it would skip what readline buffered
    assert load.wait(600) == 0
    results = [json.loads(x) for x in [*seen, *rest.splitlines()] if x.strip()]
    assert Counter(r["status"] for r in results) == {200: 900}  # none dropped
    records = synced.wait_for_records([r["request_id"] for r in results])
    assert len(records) == 900
    # every replica served on both policies, and only the new one once all had converged
    by_base = {b: Counter() for b in synced.bases}  # type: ignore[var-annotated]
    for r in results:
        by_base[r["base"]][records[r["request_id"]]["policy_hash"]] += 1
    assert all(set(c) == {before, after} for c in by_base.values()), by_base
    late = [records[r["request_id"]]["policy_hash"] for r in results[converged_at + 60 :]]
    assert late and set(late) == {after}
    client = redis.Redis.from_url(REDIS_URL)
    try:  # published under the state's own prefix
        stored = json.loads(client.get(f"{synced.prefix}policy") or b"{}")
    finally:
        client.close()
    assert load_policy_text(stored["text"], "p.yaml").hash == after
