"""Which Redis ``serve`` syncs policies through: ``--policy-sync``, else the ``--state``
URL when it is ``redis://`` (its key prefix included), or none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from modelroute.cli_keys import serve_settings
from modelroute.policy_sync import PolicySync
from modelroute.router import Router
from modelroute.serve_access import AccessSettings, access_parts

from ..serve_process import quickstart_policy

STATE = "redis://127.0.0.1:6379/3?prefix=team-a:"


def sync_url(policy_sync: str | None, state_url: str) -> str | None:
    settings = serve_settings("p.yaml", None, "off", 5.0, None, 5.0, "key", policy_sync, state_url)
    return settings["policy_sync_url"]  # type: ignore[no-any-return]


def test_the_state_url_is_the_default() -> None:
    assert sync_url(None, STATE) == STATE
    assert sync_url(None, "memory") is None
    assert sync_url("off", STATE) is None
    assert sync_url("redis://other:6379/0", STATE) == "redis://other:6379/0"


def test_the_prefix_of_the_url_names_the_policy_key(tmp_path: Path) -> None:
    policy, _ = quickstart_policy(tmp_path)
    router = Router.from_file(policy)
    _, _, services = access_parts(router, None, None, AccessSettings(policy_sync_url=STATE))
    (sync,) = [s for s in services if isinstance(s, PolicySync)]
    assert sync.key == "team-a:policy" and sync.channel == "team-a:policy:changed"
    assert sync.url == "redis://127.0.0.1:6379/3"
    router.close()


def test_a_policy_sync_that_is_not_redis_exits_2(tmp_path: Path) -> None:
    policy, _ = quickstart_policy(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "modelroute", "serve", str(policy), "--store", "none",
         "--policy-sync", "http://127.0.0.1:6379"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--policy-sync takes a redis:// URL, or off" in done.stderr


def test_durable_records_need_a_store(tmp_path: Path) -> None:
    policy, _ = quickstart_policy(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "modelroute", "serve", str(policy), "--store", "none",
         "--records-durable"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "--records-durable" in done.stderr
