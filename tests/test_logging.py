"""Logging: `--log-level` reaches the modelroute.* loggers, `--log-format text|json`, every
line has a timestamp and logger name, and keys never appear."""

from __future__ import annotations

import json
import logging
import logging.config
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from modelroute.logconfig import REDACTED, log_config

from .gateway.harness import free_port
from .policies import model

KEY = "sk-live-0123456789abcdefXYZ"
PASSWORD = "hunter2-store-password"
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


@pytest.fixture
def configured_loggers() -> Iterator[None]:
    """dictConfig changes process-wide loggers: put back what it touches."""
    names = ("modelroute", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {
        name: (lg.handlers[:], lg.level, lg.propagate)
        for name in names
        for lg in [logging.getLogger(name)]
    }
    yield
    for name, (handlers, level, propagate) in saved.items():
        lg = logging.getLogger(name)
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate


def _emit(fmt: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    logging.config.dictConfig(log_config("info", fmt, [KEY]))  # type: ignore[arg-type]
    log = logging.getLogger("modelroute.records")
    log.debug("hidden at info")
    log.warning("calling upstream with key %s", KEY)
    log.warning("header Authorization: Bearer abc.def-ghi and x-api-key=other-secret")
    log.warning("store postgresql://app:%s@db.internal:5432/records failed", PASSWORD)
    try:
        raise RuntimeError(f"upstream refused key {KEY}")
    except RuntimeError:
        log.exception("attempt failed")
    return capsys.readouterr().err.splitlines()


def _assert_no_secrets(output: str) -> None:
    for secret in (KEY, PASSWORD, "abc.def-ghi", "other-secret"):
        assert secret not in output
    assert REDACTED in output


def test_json_lines_have_timestamp_level_logger_and_no_secrets(
    configured_loggers: None, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _emit("json", capsys)
    parsed = [json.loads(line) for line in lines]
    assert len(parsed) == 4  # the debug line is below the level
    for entry in parsed:
        assert entry["logger"] == "modelroute.records"
        assert entry["level"] == "WARNING" or entry["level"] == "ERROR"
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", entry["ts"])
    assert "RuntimeError" in parsed[-1]["exc_info"]
    assert "db.internal:5432/records" in parsed[2]["message"]
    _assert_no_secrets("\n".join(lines))


def test_text_lines_have_timestamp_and_logger_and_no_secrets(
    configured_loggers: None, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _emit("text", capsys)
    starts = [line for line in lines if TS.match(line)]
    assert len(starts) == 4
    assert all(" modelroute.records: " in line for line in starts)
    assert any(line.startswith("RuntimeError") for line in lines)  # the traceback follows
    _assert_no_secrets("\n".join(lines))


def _serve(tmp_path: Path, *flags: str) -> str:
    """Run `modelroute serve` until it answers, stop it, and return what it printed."""
    policy = {
        "models": {"m": model(api_key="env:MODELROUTE_TEST_KEY")},
        "routes": {"chat": {"strategy": {"kind": "fixed", "models": ["m"]}}},
    }
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    port = free_port()
    err = tmp_path / "stderr.txt"
    with err.open("wb") as sink:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "modelroute"),
                "serve",
                str(path),
                "--port",
                str(port),
                "--store",
                str(tmp_path / "records.db"),
                "--spool-dir",
                str(tmp_path / "spool"),
                *flags,
            ],
            stderr=sink,
            env={**os.environ, "MODELROUTE_TEST_KEY": KEY},
            start_new_session=True,
        )
        try:
            for _ in range(600):
                assert proc.poll() is None, err.read_text()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                        break
                except OSError:
                    time.sleep(0.1)
            else:
                raise AssertionError(f"modelroute serve did not come up: {err.read_text()}")
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    return err.read_text()


def test_serve_logs_json_at_the_level_asked_for(tmp_path: Path) -> None:
    output = _serve(tmp_path, "--log-level", "info", "--log-format", "json")
    entries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    loggers = {entry["logger"] for entry in entries}
    # modelroute's own logger, not only uvicorn's, reaches the output at info.
    assert "modelroute.serve" in loggers, output
    assert any(name.startswith("uvicorn") for name in loggers), output
    assert any("Finished server process" in entry["message"] for entry in entries), output
    assert all(entry["ts"] and entry["level"] for entry in entries)
    assert KEY not in output


def test_serve_at_warning_hides_info_lines(tmp_path: Path) -> None:
    output = _serve(tmp_path, "--log-level", "warning")
    assert "modelroute.serve" not in output  # the info line stays below the level
    assert KEY not in output
