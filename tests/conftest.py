from __future__ import annotations

import subprocess
import sys
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
def cli():
    return run_cli


# A fresh PostgreSQL database per test, for tests outside tests/records/ too.
from .records.conftest import pg_cluster, pg_url  # noqa: E402, F401
