"""``modelroute serve`` and ``modelroute keys`` as real processes, for the tests of keys,
the admin API and policy rollouts."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..gateway.harness import free_port
from ..serve_process import quickstart_policy, stop, wait_ready

ADMIN_TOKEN = "adm-TOKEN-7f3c9e1d2b4a6c8e0f1a3b5c7d9e"  # distinctive: grepped for in outputs


def modelroute(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelroute", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def create_key(store: str, name: str, *args: str) -> str:
    done = modelroute("keys", "create", "--store", store, "--name", name, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@dataclass
class Served:
    base: str
    proc: subprocess.Popen[bytes]
    log: Path
    store: str
    policy: Path

    def admin(self, method: str, path: str, body: Any = None, token: str | None = ADMIN_TOKEN,
              raw: bytes | None = None) -> tuple[int, Any]:  # fmt: skip
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"content-type": "application/json"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        request = urllib.request.Request(f"{self.base}{path}", data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())


@contextlib.contextmanager
def serving(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, policy: Path | None = None,
    store: str | None = None, name: str = "gateway",
) -> Iterator[Served]:  # fmt: skip
    """The quickstart policy (its simulator on a free port) served by a real process with
    ``args``, the admin token in ``MR_ADMIN`` and records in a SQLite file."""
    if policy is None:
        policy, _ = quickstart_policy(tmp_path)
    store = store or str(tmp_path / "records.db")
    port = free_port()
    log = tmp_path / f"{name}.log"
    command = [
        sys.executable, "-m", "modelroute", "serve", str(policy), "--port", str(port),
        "--store", store, "--spool-dir", str(tmp_path / f"spool-{name}"),
        "--admin-token", "env:MR_ADMIN", *args,
    ]  # fmt: skip
    with log.open("wb") as err:
        proc = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, "MR_ADMIN": ADMIN_TOKEN, **(env or {})},
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        yield Served(base, proc, log, store, policy)
    finally:
        stop(proc)
