"""`modelroute serve` as a real process, for the tests of how it starts and stops: the
quickstart policy with its simulator moved to a free port, the process in its own session
(so the simulator it starts can be found by process group), and waits without upper bounds
on correctness (a deadline only turns a hang into a failure)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from .conftest import EXAMPLES
from .gateway.harness import free_port

PATIENCE_S = 30.0  # how long to wait for something that should happen well before


def quickstart_policy(tmp_path: Path) -> tuple[Path, int]:
    """The quickstart policy with its simulator (and the models' base URLs) on a free port."""
    port = free_port()
    text = (EXAMPLES / "quickstart.yaml").read_text()
    text = text.replace("8900", str(port)).replace(
        "simulator/quickstart.yaml", str(EXAMPLES / "simulator" / "quickstart.yaml")
    )
    path = tmp_path / "quickstart.yaml"
    path.write_text(text)
    return path, port


def start_serve(
    policy: Path, port: int, *args: str, stderr: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``env``: variables added to this process's environment for it."""
    with stderr.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "modelroute", "serve", str(policy), "--port", str(port), *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its process group is its own pid: its children share it
            env=None if env is None else {**os.environ, **env},
        )


def get_json(url: str) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, json.loads(response.read())


def post_chat(base: str, content: str = "What is the capital of France?") -> tuple[Any, str]:
    body = json.dumps({"model": "chat", "messages": [{"role": "user", "content": content}]})
    request = urllib.request.Request(
        f"{base}/v1/chat/completions", body.encode(), {"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read()), response.headers["x-modelroute-request-id"]


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    deadline = time.monotonic() + PATIENCE_S
    while True:
        assert proc.poll() is None, f"modelroute serve exited with {proc.returncode}"
        try:
            status, body = get_json(f"{base}/readyz")
            assert status == 200
            return dict(body)
        except OSError:
            assert time.monotonic() < deadline, f"{base} did not come up"
            time.sleep(0.1)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in a process group, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat.rpartition(")")[2].split()  # after "(comm)": state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Whatever a test left running in the process group: end it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    for pid in group_members(proc.pid):
        os.kill(pid, signal.SIGKILL)
