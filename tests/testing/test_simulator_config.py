"""The simulator's configuration: validation, loading from YAML, and ``run_simulator`` serving
from a config file in its own process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import ValidationError

import modelroute.testing as sim_pkg
from modelroute.testing import SimulatorConfig

from .simulator_support import CONFIG, FRANCE, oa_body


def test_config_rejects_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ValidationError):
        SimulatorConfig.model_validate({"models": {"m": {"latency": 5}}})
    with pytest.raises(ValidationError):
        SimulatorConfig.model_validate(
            {"models": {"m": {"faults": {"server_error": 0.6, "reset": 0.5}}}}
        )
    with pytest.raises(ValidationError):
        SimulatorConfig.model_validate({"models": {"m": {"latency_ms": {"p50": 50, "p95": 10}}}})
    with pytest.raises(ValidationError):
        SimulatorConfig.model_validate({"models": {"m": {"script": ["ok", "explode"]}}})


def test_config_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    loaded = SimulatorConfig.from_yaml(path)
    assert loaded.seed == 7
    assert loaded.models["small"].answers[1].tool_call is not None
    assert loaded.models["paced"].latency_ms.p50 == 80


def test_run_simulator_serves_until_sigterm(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    src = Path(sim_pkg.__file__).resolve().parents[2]
    code = (
        "import sys; from modelroute.testing import run_simulator; "
        f"run_simulator({str(path)!r}, port=0, ready=lambda url: print(url, flush=True))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        r = httpx.post(f"{url}/v1/chat/completions", json=oa_body("capital of France"), timeout=5)
        assert r.json()["choices"][0]["message"]["content"] == FRANCE
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
