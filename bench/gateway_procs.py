"""What the gateway benchmarks share: a simulator upstream and ``modelroute serve`` processes
over one policy, the gateway's CPU time from /proc, and a policy's simulated model.

    with upstream(tmp, policy, answer, redis_prefix) as sim_port:
        with serving(tmp, state) as (base, pid):
            before = cpu_s(pid)
            ...
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

SIMULATOR = """
seed: 1
models:
  sim-v1:
    latency_ms: {{p50: 1, p95: 2}}
    ttft_ms: {{p50: 1, p95: 2}}
    tokens_per_second: 100000
    context_window: 32000
    default_answer: "{answer}"
"""

# A policy's ``models:`` section: the one simulated model, ``sim`` (a template: format the
# whole policy with ``sim=<the simulator's port>``).
SIM_MODEL = """models:
  sim:
    provider: simulator
    base_url: http://127.0.0.1:{sim}/v1
    model_id: sim-v1
    allow_floating: true
    prices: {{input: 0.1, output: 0.2}}
    context_window: 32000
    latency: {{p50_ms: 2, p95_ms: 5}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int) -> float:
    """A process's CPU time so far (user + system), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextlib.contextmanager
def upstream(tmp: Path, policy: str, answer: str, redis_prefix: str) -> Iterator[int]:
    """The simulator running (its port yielded), ``policy`` written to ``tmp/policy.yaml``
    for it; afterwards the simulator stopped and the Redis keys under ``redis_prefix``
    deleted."""
    sim_port = free_port()
    (tmp / "sim.yaml").write_text(SIMULATOR.format(answer=answer))
    (tmp / "policy.yaml").write_text(policy.format(sim=sim_port))
    sim = subprocess.Popen(
        [sys.executable, "-m", "modelroute", "simulator", "--config", str(tmp / "sim.yaml"),
         "--port", str(sim_port), "--until-stdin-closes"],
        stdin=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_up(f"http://127.0.0.1:{sim_port}/health")
        yield sim_port
    finally:
        assert sim.stdin is not None
        sim.stdin.close()
        sim.wait(30)
        subprocess.run(
            ["sh", "-c", f"redis-cli --scan --pattern '{redis_prefix}*' | xargs -r redis-cli del"],
            stdout=subprocess.DEVNULL, check=False,
        )  # fmt: skip


@contextlib.contextmanager
def serving(tmp: Path, state: str) -> Iterator[tuple[str, int]]:
    """``modelroute serve`` over ``tmp/policy.yaml`` with ``--state state`` and no records,
    ready: its base URL and process id."""
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "modelroute", "serve", str(tmp / "policy.yaml"), "--port",
         str(port), "--store", "none", "--state", state],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(f"{base}/readyz")
        yield base, serve.pid
    finally:
        serve.terminate()
        serve.wait(30)
