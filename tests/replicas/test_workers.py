"""``modelroute serve --workers 2 --state redis://...``: the two worker processes of one
gateway count one rate limit, not one each."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict

from ..gateway.harness import free_port
from ..serve_process import start_serve, stop, wait_ready
from ..state.conftest import REDIS_URL, delete_prefix, require_redis, unique_prefix
from .conftest import Cluster, simulator

POLICY = """
version: workers
models:
  sim:
    provider: simulator
    base_url: http://127.0.0.1:{sim}/v1
    model_id: sim-v1
    allow_floating: true
    prices: {{input: 1, output: 2}}
    context_window: 32000
    latency: {{p50_ms: 20, p95_ms: 50}}
routes:
  limited:
    rate_limit: {{requests_per_minute: 40, per: route}}
    strategy: {{kind: fixed, models: [sim]}}
  open:
    strategy: {{kind: fixed, models: [sim]}}
"""


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[Cluster, Path]]:
    require_redis()
    prefix = unique_prefix()
    sim_port, port = free_port(), free_port()
    (tmp_path / "policy.yaml").write_text(POLICY.format(sim=sim_port))
    scratch = tmp_path / "tmp"  # the workers' shared metrics directory is made in here
    scratch.mkdir()
    try:
        with simulator(tmp_path, sim_port):
            proc = start_serve(
                tmp_path / "policy.yaml", port, "--workers", "2", "--store", "none",
                "--state", f"{REDIS_URL}?prefix={prefix}", stderr=tmp_path / "serve.log",
                env={"TMPDIR": str(scratch)},
            )  # fmt: skip
            try:
                base = f"http://127.0.0.1:{port}"
                wait_ready(base, proc)
                yield Cluster([base], [proc], "", tmp_path), scratch
            finally:
                stop(proc)
    finally:
        delete_prefix(prefix)


def serving_pids(scratch: Path, route: str = "limited") -> set[str]:
    """The worker processes that counted a request on ``route`` (in prometheus_client's
    multiprocess mode each writes its metrics to files of its own, named by its pid)."""
    pids = set()
    for path in scratch.glob("modelroute-metrics-*/*.db"):
        found = re.fullmatch(r"\w+_(\d+)\.db", path.name)
        values = MmapedDict.read_all_values_from_file(str(path))
        if found and any(f'"{route}"' in key for key, *_ in values):
            pids.add(found.group(1))
    return pids


def both_workers_serving(gateway: Cluster, scratch: Path) -> None:
    """On a loaded machine one worker can accept every connection while the other is still
    starting: send unlimited traffic until both have answered some (at most 20 rounds)."""
    for _ in range(20):
        gateway.load(route="open", requests=32, concurrency=16, fresh_connections=True)
        if len(serving_pids(scratch, "open")) == 2:
            return
        time.sleep(0.5)
    raise AssertionError("the second worker never served a request")


def test_two_workers_share_one_rate_limit(two_workers: tuple[Cluster, Path]) -> None:
    gateway, scratch = two_workers
    both_workers_serving(gateway, scratch)
    results = gateway.load(route="limited", requests=120, concurrency=16, fresh_connections=True)
    statuses = Counter(r["status"] for r in results)
    assert statuses[200] + statuses[429] == 120, statuses
    assert 38 <= statuses[200] <= 42, statuses  # one limit of 40, not 2 x 40
    assert len(serving_pids(scratch)) == 2  # both workers served requests
