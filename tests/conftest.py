from __future__ import annotations

import fcntl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command in a real process: exit codes and stderr as a user sees them."""
    return subprocess.run(
        [sys.executable, "-m", "modelroute", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=60,
    )


@pytest.fixture
def quickstart_simulator_port() -> Iterator[None]:
    """The quickstart's simulator port (8900, as written) for this test alone: serve refuses
    a port something else holds, so test runs on one machine take turns instead of failing."""
    with (Path(tempfile.gettempdir()) / "modelroute-tests-port-8900.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture
def cli():
    return run_cli


# A fresh PostgreSQL database per test (and a SQLite or PostgreSQL target), for tests outside
# tests/records/ too.
from .records.conftest import pg_cluster, pg_url, store_target  # noqa: E402, F401
from .state.conftest import redis_prefix  # noqa: E402, F401
