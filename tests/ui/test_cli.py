"""``modelroute serve --admin-token`` and ``modelroute ui`` as real processes, and their
refusals (exit 2, one line)."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ..conftest import run_cli
from ..gateway.harness import free_port
from ..serve_process import post_chat, quickstart_policy, start_serve, stop, wait_for

ENV = "MODELROUTE_TEST_UI_TOKEN"
SECRET = "adm-cli-5e0c8a17b2"


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _up(url: str) -> bool:
    try:
        return _get(url)[0] == 200
    except OSError:
        return False


def test_serve_and_ui_show_the_dashboard_behind_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, SECRET)
    policy, _ = quickstart_policy(tmp_path)
    store = tmp_path / "records.db"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    args = ("--store", str(store), "--spool-dir", str(tmp_path / "spool"), "--log-level", "debug")
    proc = start_serve(policy, port, *args, "--admin-token", f"env:{ENV}", stderr=log)
    try:
        wait_for(lambda: _up(f"{base}/readyz"), "serve came up")
        _, request_id = post_chat(base)
        assert _get(f"{base}/ui/")[0] == 401
        assert _get(f"{base}/ui/", "wrong")[0] == 401
        wait_for(lambda: request_id in _get(f"{base}/ui/requests", SECRET)[1], "record shown")
    finally:
        stop(proc)
    assert SECRET not in log.read_text()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "modelroute", "ui", "--store", str(store), "--policy",
               str(policy), "--admin-token", f"env:{ENV}", "--port", str(port)]  # fmt: skip
    with (tmp_path / "ui.log").open("wb") as err:
        ui = subprocess.Popen(
            command, stderr=err, stdout=subprocess.DEVNULL, start_new_session=True
        )
    try:
        wait_for(lambda: _up(f"{base}/healthz"), "modelroute ui came up")
        assert _get(f"{base}/ui/")[0] == 401
        status, html = _get(f"{base}/ui/?range=1h", SECRET)
        assert status == 200 and 'id="total-requests">1<' in html
        status, html = _get(f"{base}/ui/requests/{request_id}", SECRET)
        assert status == 200 and request_id in html
        assert _get(f"{base}/v1/models")[0] == 404  # it serves no traffic
    finally:
        stop(ui)
    assert SECRET not in (tmp_path / "ui.log").read_text()


def test_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, SECRET)
    monkeypatch.delenv("MODELROUTE_TEST_UNSET", raising=False)
    store = tmp_path / "records.db"
    store.touch()
    cases = {
        ("ui", "--store", str(store)): "--admin-token env:NAME is required",
        ("ui", "--store", str(store), "--admin-token", SECRET): "takes env:NAME",
        ("ui", "--store", str(store), "--admin-token", "env:MODELROUTE_TEST_UNSET"): "not set",
        ("ui", "--store", str(tmp_path / "nope.db"), "--admin-token", f"env:{ENV}"): "no records",
        ("ui", "--store", "mysql://x", "--admin-token", f"env:{ENV}"): "unsupported",
        ("ui", "--store", str(store), "--admin-token", f"env:{ENV}", "--snapshots-every", "0"): (
            "--snapshots-every"
        ),
        ("serve", "examples/quickstart.yaml", "--store", "none", "--admin-token", f"env:{ENV}"): (
            "needs a --store"
        ),
    }
    for args, message in cases.items():
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert SECRET not in result.stderr
