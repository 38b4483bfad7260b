"""The README quickstart, run as written: `modelroute serve examples/quickstart.yaml`, then
the README's own curl command and Python snippet (only the port and where records are kept
differ, to avoid clashes)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .conftest import ROOT
from .gateway.harness import free_port

README = (ROOT / "README.md").read_text()


def _block(marker: str) -> str:
    found = re.search(rf"<!-- quickstart:{marker} -->\n```\w+\n(.*?)```", README, re.S)
    assert found, f"README lost its quickstart:{marker} block"
    return found.group(1)


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "modelroute serve exited"
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def test_readme_quickstart_runs_as_written(tmp_path: Path, quickstart_simulator_port: None) -> None:
    assert "modelroute serve examples/quickstart.yaml" in README
    port = free_port()
    modelroute = Path(sys.executable).parent / "modelroute"
    proc = subprocess.Popen(
        [
            str(modelroute),
            "serve",
            "examples/quickstart.yaml",
            "--port",
            str(port),
            "--store",
            str(tmp_path / "records.db"),
            "--spool-dir",
            str(tmp_path / "spool"),
        ],
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        _wait(f"http://127.0.0.1:{port}/readyz", proc)
        curl = _block("curl").replace("8080", str(port)).replace("\\\n", " ")
        out = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30)
        answer = json.loads(out.stdout)
        assert answer["choices"][0]["message"]["content"] == "Paris"
        script = tmp_path / "snippet.py"
        script.write_text(_block("python").replace("8080", str(port)))
        run = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "OPENAI_API_KEY": ""},
        )
        assert run.returncode == 0, run.stderr
        lines = run.stdout.splitlines()
        assert lines[0] == "Paris"
        assert lines[1].startswith("small ")
        # Both requests were recorded in the store, and the CLI reads them back.
        logs = subprocess.run(
            [str(modelroute), "logs", "--store", str(tmp_path / "records.db"), "--json"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert logs.returncode == 0, logs.stderr
        rows = [json.loads(line) for line in logs.stdout.splitlines()]
        assert len(rows) == 2 and {r["final_model"] for r in rows} == {"small"}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
