"""Every shell and Python block in the README runs: a README example cannot break silently.

Each ```bash / ```python block carries a marker comment (``<!-- readme:NAME -->``, or
``<!-- quickstart:NAME -->`` for the quickstart, which ``test_quickstart.py`` runs as written),
and ``test_every_block_is_run`` fails for a block no test runs. A block runs as written, with
these substitutions only: the port, the record store's folder or database (a fresh one per
test), and a placeholder a reader fills in (``REQUEST_ID``). The test command and the
llama.cpp install are what ``.ci/run`` executes, so those blocks are checked against it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from .conftest import ROOT
from .gateway.harness import free_port

README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent
BLOCK = re.compile(r"(?:<!-- (\w+):([\w-]+) -->\n)?```(bash|python|sh)\n(.*?)```", re.S)
# Blocks and the test that runs each.
RUNNERS = {
    "quickstart:serve": "test_quickstart.py",
    "quickstart:curl": "test_quickstart.py",
    "quickstart:python": "test_quickstart.py",
    "readme:install": "test_install_block",
    "readme:explain": "test_explain_block_prints_the_readme_output",
    "readme:library": "test_library_block",
    "readme:responses": "test_responses_block",
    "readme:provider": "test_provider_plugin.py",
    "readme:records": "test_records_block",
    "readme:outcomes": "test_outcomes_block",
    "readme:eval": "test_eval_block",
    "readme:drift": "test_drift_block",
    "readme:audit": "audit/test_audit_readme.py",
    "readme:tests": "test_ci_runs_the_readme_test_commands",
    "readme:llama": "test_ci_runs_the_readme_test_commands",
    "readme:calibrate": "calibration/test_cli_calibrate.py",
    "readme:shadow": "test_example_classify.py",
    "readme:simulate": "simulate/test_cli_simulate.py",
    "readme:dashboard": "test_dashboard_block",
}


def blocks() -> dict[str, str]:
    found: dict[str, str] = {}
    for kind, name, _lang, body in BLOCK.findall(README):
        key = f"{kind}:{name}" if kind else f"unmarked:{body.strip()[:60]!r}"
        assert key not in found, f"two README blocks are marked {key}"
        found[key] = body
    return found


def test_every_block_is_run() -> None:
    found = blocks()
    assert set(found) == set(RUNNERS), (
        f"README blocks no test runs: {sorted(set(found) - set(RUNNERS))}; "
        f"runners without a block: {sorted(set(RUNNERS) - set(found))}"
    )


def commands(block: str) -> list[str]:
    """The block's commands: comments dropped, continuation lines joined."""
    joined = block.replace("\\\n", " ")
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _sh(command: str, cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        **kwargs,  # type: ignore[arg-type]
    )


def test_install_block(tmp_path: Path) -> None:
    """``pip install .`` builds and installs the package from the checkout (into a folder
    here, without dependencies: those are this environment's); the developer line is the
    one ``.ci/run`` executes."""
    user, developer = commands(blocks()["readme:install"])
    assert user == "pip install ."
    target = tmp_path / "site"
    result = _sh(
        f"{BIN}/pip install -q --no-deps --no-build-isolation --target {target} .",
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    probe = subprocess.run(
        [sys.executable, "-c", "import modelroute, sys; print(modelroute.__file__)"],
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert probe.stdout.startswith(str(target)), probe.stderr
    assert (target / "bin" / "modelroute").exists()
    shipped = target / "modelroute" / "dashboard"  # the dashboard's package data
    assert (shipped / "templates" / "base.html").exists()
    assert (shipped / "static" / "vendor" / "uplot" / "LICENSE").exists()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for step in developer.split(" && "):
        assert step.replace("pip install ", "pip install -q ") in ci


def test_explain_block_prints_the_readme_output() -> None:
    check, explain = commands(blocks()["readme:explain"])
    result = _sh(check, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    result = _sh(explain, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    shown = re.search(r"<!-- readme:explain-output -->\n```text\n(.*?)```", README, re.S)
    assert shown, "README lost the explain output block"
    assert result.stdout == shown.group(1)


@contextlib.contextmanager
def _running(argv: list[str], cwd: Path, ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        for _ in range(600):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                with urllib.request.urlopen(ready_url, timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError(f"{argv} did not come up at {ready_url}")
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_library_block(tmp_path: Path, quickstart_simulator_port: None) -> None:
    script = tmp_path / "library.py"
    script.write_text(blocks()["readme:library"])
    simulator = [
        str(BIN / "modelroute"),
        "simulator",
        "--config",
        "examples/simulator/quickstart.yaml",
        "--port",
        "8900",
    ]
    with _running(simulator, ROOT, "http://127.0.0.1:8900/health"):
        run = subprocess.run(
            [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["Paris small", "Paris"]


def test_responses_block(tmp_path: Path, quickstart_simulator_port: None) -> None:
    """The block runs as written against the quickstart gateway (its port substituted)."""
    port = free_port()
    script = tmp_path / "responses.py"
    script.write_text(blocks()["readme:responses"].replace("8080", str(port)))
    serve = [
        str(BIN / "modelroute"), "serve", "examples/quickstart.yaml", "--port", str(port),
        "--spool-dir", str(tmp_path / "spool"), "--store", str(tmp_path / "r.db"),
    ]  # fmt: skip
    with _running(serve, ROOT, f"http://127.0.0.1:{port}/readyz"):
        run = subprocess.run(
            [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "Paris"
    assert lines[1:3] == ["response.created", "response.in_progress"]
    assert "response.output_text.delta" in lines and lines[-2] == "response.completed"
    assert lines[-1] == "True"  # the follow-up turn, stored and read back


def _ask(port: int) -> str:
    body = {"model": "chat", "messages": [{"role": "user", "content": "Capital of France?"}]}
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(response.headers["x-modelroute-request-id"])


def test_records_block(tmp_path: Path, pg_url: str, quickstart_simulator_port: None) -> None:
    """The serve lines run (each answers a request), then the record commands read what
    they stored: the SQLite file in the working folder, and the PostgreSQL database."""
    lines = commands(blocks()["readme:records"])
    serves = [line for line in lines if line.startswith("modelroute serve ")]
    readers = [line for line in lines if not line.startswith("modelroute serve ")]
    assert len(serves) == 2 and len(readers) >= 4
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    ids = []
    for line in serves:
        line = re.sub(r"postgresql://\S+", pg_url, line)
        port = free_port()
        argv = [*shlex.split(line), "--port", str(port), "--spool-dir", str(tmp_path / "spool")]
        with _running(argv, tmp_path, f"http://127.0.0.1:{port}/readyz"):
            ids.append(_ask(port))
    assert (tmp_path / "modelroute.db").exists()
    for line in readers:
        line = line.replace("REQUEST_ID", ids[0])
        result = _sh(line, cwd=tmp_path)
        assert result.returncode == 0, f"{line}: {result.stderr}"
        if line.startswith("modelroute show"):
            assert ids[0] in result.stdout
        if line.startswith("modelroute logs"):
            assert ids[0] in result.stdout
    exported = next(tmp_path.glob("*.parquet"))
    assert pq.read_table(exported).num_rows == 1
    stored = _sh(f"modelroute show --store {pg_url} --json {ids[1]}", cwd=tmp_path)
    assert stored.returncode == 0, stored.stderr
    assert json.loads(stored.stdout)["request_id"] == ids[1]


def _seed_outcomes(path: Path) -> None:
    import asyncio

    from modelroute.outcomes import Outcome, OutcomeSource
    from modelroute.records.stores.sqlite import SqliteStore

    async def seed() -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            await store.add_outcomes(
                [
                    Outcome(
                        OutcomeSource.EVAL,
                        "exact",
                        float(i % 10 != 0),
                        "small",
                        time.time() - 3600 + i,
                        prompt_id=f"q{i}",
                        route="chat",
                        task="qa",
                        reported_model="small-v1-2024-08-06",
                        run="readme",
                    )
                    for i in range(412)
                ]
            )
        finally:
            await store.close()

    asyncio.run(seed())


def test_outcomes_block(tmp_path: Path) -> None:
    """The outcome commands read a store an evaluation run filled (the working folder's)."""
    lines = commands(blocks()["readme:outcomes"])
    assert [line.split()[1] for line in lines] == ["outcomes", "outcomes", "explain"]
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    _seed_outcomes(tmp_path / "modelroute.db")
    table, as_json, explain = (_sh(line, cwd=tmp_path) for line in lines)
    for result in (table, as_json, explain):
        assert result.returncode == 0, result.stderr
    assert "small-v1-2024-08-06 *  412" in table.stdout
    [row] = json.loads(as_json.stdout)
    assert (row["task"], row["n"], row["sources"]) == ("qa", 412, ["eval"])
    assert "quality 0.90 ±0.03 (n=412, eval, small-v1-2024-08-06)" in explain.stdout


def test_eval_block(tmp_path: Path, quickstart_simulator_port: None) -> None:
    """The refused run sends nothing; the run prints the table the README shows (the same
    models, scores and sample sizes); the import and the comparison read the shared gsm8k."""
    from .evaluation.support import shared_data

    refused, run, imported, compare = commands(blocks()["readme:eval"])
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / "data").symlink_to(shared_data())
    result = _sh(refused, cwd=tmp_path)
    assert result.returncode == 2 and "above --max-cost" in result.stderr, result.stderr
    result = _sh(run, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shown = re.search(r"<!-- readme:eval -->\n```bash\n.*?```\n\n```text\n(.*?)```", README, re.S)
    assert shown, "README lost the eval output block"
    table = shown.group(1).splitlines()
    printed = result.stdout.splitlines()[: len(table)]
    for expected, line in zip(table, printed, strict=True):
        assert line.split()[:6] == expected.split()[:6]  # model, quality, n, interval
    result = _sh(imported, cwd=tmp_path)
    assert result.returncode == 0 and "imported 54079 outcomes" in result.stderr, result.stderr
    result = _sh(compare, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"gsm8k .*\(n=1319\).*\(n=1319\)", result.stdout), result.stdout


def _seed_drift(path: Path) -> None:
    """A week of the quickstart's chat route on small, then a day 2.5 times slower; its
    measured quality (evaluations) steady at 0.9."""
    import asyncio
    import dataclasses

    import numpy as np

    from modelroute.records.stores.sqlite import SqliteStore

    from .drift.support import fill
    from .drift.traffic import Served

    async def seed() -> None:
        store = SqliteStore(path)
        await store.open()
        chat = Served(reported="small-v1", fingerprint=None)
        slow = dataclasses.replace(chat, latency_ms=500.0)
        try:
            await fill(
                store, np.random.default_rng(1), time.time(), [(chat, 1400)], [(slow, 300)],
                outcome_means=[(chat, 150, 0.9, 0.9)],
            )  # fmt: skip
        finally:
            await store.close()

    asyncio.run(seed())


def test_drift_block(tmp_path: Path, quickstart_simulator_port: None) -> None:
    """The drift commands find the slower day in the working folder's store (exit 1); the
    serve line checks it at start-up and shows the alert at /metrics."""
    lines = commands(blocks()["readme:drift"])
    assert [line.split()[1] for line in lines] == ["drift", "drift", "serve"]
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    _seed_drift(tmp_path / "modelroute.db")
    table, as_json = (_sh(line, cwd=tmp_path) for line in lines[:2])
    assert table.returncode == as_json.returncode == 1, table.stderr + as_json.stderr
    assert "ALERT   latency         route=chat model=small version=small-v1" in table.stdout
    report = json.loads(as_json.stdout)
    assert [f["kind"] for f in report["findings"] if f["status"] == "alert"] == ["latency"]
    [routing] = [f for f in report["findings"] if f["kind"] == "routing"]
    assert routing["status"] == "ok" and "meets min_quality 0.8" in routing["summary"]
    port = free_port()
    argv = [*shlex.split(lines[2]), "--port", str(port), "--spool-dir", str(tmp_path / "spool")]
    with _running(argv, tmp_path, f"http://127.0.0.1:{port}/readyz"):
        for _ in range(300):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                scrape = r.read().decode()
            if 'kind="latency"' in scrape:
                break
            time.sleep(0.1)
    assert 'modelroute_drift_alert{condition="latency|route=chat|model=small|' in scrape


def _page(url: str, token: str | None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_dashboard_block(
    tmp_path: Path, quickstart_simulator_port: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token is made as written; ``serve`` shows the request it served at /ui to the
    token's holder only; ``modelroute ui`` shows the same store."""
    export, serve, ui = commands(blocks()["readme:dashboard"])
    made = _sh(f'{export} && printf %s "$MODELROUTE_ADMIN_TOKEN"', cwd=tmp_path)
    assert made.returncode == 0 and len(made.stdout) >= 24, made.stderr
    token = made.stdout
    monkeypatch.setenv("MODELROUTE_ADMIN_TOKEN", token)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    port = free_port()
    argv = [*shlex.split(serve), "--port", str(port), "--spool-dir", str(tmp_path / "spool")]
    with _running(argv, tmp_path, f"http://127.0.0.1:{port}/readyz"):
        request_id = _ask(port)
        assert _page(f"http://127.0.0.1:{port}/ui/", None)[0] == 401
        for _ in range(300):  # the record reaches the store within a writer batch
            status, html = _page(f"http://127.0.0.1:{port}/ui/requests", token)
            if request_id in html:
                break
            time.sleep(0.1)
        assert status == 200 and request_id in html
    port = free_port()
    argv = shlex.split(re.sub(r"--port \d+", f"--port {port}", ui))
    with _running(argv, tmp_path, f"http://127.0.0.1:{port}/healthz"):
        assert _page(f"http://127.0.0.1:{port}/ui/requests", None)[0] == 401
        status, html = _page(f"http://127.0.0.1:{port}/ui/requests/{request_id}", token)
        assert status == 200 and request_id in html


def test_ci_runs_the_readme_test_commands() -> None:
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip()]
    (test_command,) = commands(blocks()["readme:tests"])
    assert ci[-1] == test_command
    (llama,) = commands(blocks()["readme:llama"])
    assert llama.replace("pip install ", "pip install -q ") in ci
