"""The simulator `modelroute serve` starts for a policy lives exactly as long as the gateway:
it stops with it however the gateway ends, and a port already held by something else (a
simulator left from an earlier run, any other listener) is refused, never silently used."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import EXAMPLES
from .gateway.harness import free_port
from .serve_process import (
    group_members,
    port_is_free,
    post_chat,
    quickstart_policy,
    start_serve,
    stop,
    wait_for,
    wait_ready,
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_the_simulator_stops_with_the_gateway(tmp_path: Path, sig: signal.Signals) -> None:
    policy, sim_port = quickstart_policy(tmp_path)
    port = free_port()
    proc = start_serve(policy, port, "--store", "none", stderr=tmp_path / "stderr")
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        answer, _ = post_chat(f"http://127.0.0.1:{port}")
        assert answer["choices"][0]["message"]["content"] == "Paris"  # the simulator answered
        assert [pid for pid in group_members(proc.pid) if pid != proc.pid]  # it runs
        assert not port_is_free(sim_port)
        os.kill(proc.pid, sig)  # the gateway only, as a supervisor or the OOM killer would
        proc.wait(30)
        wait_for(lambda: not group_members(proc.pid), "the simulator outlived the gateway")
        assert port_is_free(sim_port)
    finally:
        stop(proc)


def _held_by_a_listener(port: int) -> socket.socket:
    listener = socket.socket()
    listener.bind(("127.0.0.1", port))
    listener.listen()
    return listener


def _held_by_a_simulator(port: int) -> subprocess.Popen[bytes]:
    """A simulator left running by an earlier gateway: it answers /health like ours would."""
    config = EXAMPLES / "simulator" / "quickstart.yaml"
    args = ["simulator", "--config", str(config), "--port", str(port)]
    held = subprocess.Popen([sys.executable, "-m", "modelroute", *args], stderr=subprocess.DEVNULL)
    wait_for(lambda: not port_is_free(port), "the stale simulator did not start")
    return held


@pytest.mark.parametrize("holder", ["listener", "simulator"])
def test_a_taken_simulator_port_is_refused(tmp_path: Path, holder: str) -> None:
    policy, sim_port = quickstart_policy(tmp_path)
    if holder == "listener":
        held = _held_by_a_listener(sim_port)
        release = held.close
    else:
        process = _held_by_a_simulator(sim_port)

        def release() -> None:
            process.kill()
            process.wait()

    port = free_port()
    stderr = tmp_path / "stderr"
    proc = start_serve(policy, port, "--store", "none", stderr=stderr)
    try:
        assert proc.wait(60) == 2
        lines = stderr.read_text().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("error: ") and f"port {sim_port}" in lines[0]
        assert "in use" in lines[0]
        assert port_is_free(port)  # the gateway never started either
    finally:
        stop(proc)
        release()
