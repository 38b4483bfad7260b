"""``modelroute serve --feedback-token env:NAME``: the token comes from the environment only,
lets its holder rate any request, in every worker, and never shows up in the output."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from modelroute.testing import Simulator

from ..conftest import ROOT
from .fixtures import POLICY, ask, sim_config
from .harness import free_port

MODELROUTE = Path(sys.executable).parent / "modelroute"
TOKEN = "fb-token-4b1d9e"


def _serve(policy: Path, port: int, workers: int, *extra: str) -> subprocess.Popen[str]:
    where = ["--port", str(port), "--store", "none", "--workers", str(workers)]
    return subprocess.Popen(
        [str(MODELROUTE), "serve", str(policy), *where, "--log-level", "info", *extra],
        env={**os.environ, "SIM_KEY": "k", "MR_FEEDBACK_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


async def _ready(http: httpx.AsyncClient, url: str, proc: subprocess.Popen[str]) -> None:
    for _ in range(300):
        assert proc.poll() is None, proc.communicate()[0]
        try:
            if (await http.get(f"{url}/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the gateway did not come up")


@pytest.mark.parametrize("workers", [1, 2])
async def test_the_token_holder_may_rate_any_request(tmp_path: Path, workers: int) -> None:
    async with Simulator(sim_config()) as sim:
        policy = tmp_path / "policy.yaml"
        policy.write_text(
            POLICY.replace("{sim}", sim.openai_base_url).replace("{sim_root}", sim.base_url)
        )
        port = free_port()
        proc = _serve(policy, port, workers, "--feedback-token", "env:MR_FEEDBACK_TOKEN")
        url = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                await _ready(http, url, proc)
                answer = await http.post(
                    f"{url}/v1/chat/completions",
                    json={"model": "chat", **ask()},
                    headers={"authorization": "Bearer alice"},
                )
                body = {"request_id": answer.headers["x-modelroute-request-id"], "score": 1}
                # Each worker may get the post: every one of them knows the token.
                for _ in range(4):
                    by_token = await http.post(
                        f"{url}/v1/feedback", json=body, headers={"x-api-key": TOKEN}
                    )
                    assert by_token.status_code == 200, by_token.text
                guess = await http.post(
                    f"{url}/v1/feedback", json=body, headers={"x-api-key": TOKEN[:-1]}
                )
                assert guess.status_code == 403
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            output = await asyncio.to_thread(lambda: proc.communicate(timeout=30)[0])
        assert TOKEN not in output


def test_the_token_is_named_never_given(tmp_path: Path) -> None:
    policy = str(ROOT / "examples" / "faq.yaml")
    env = {k: v for k, v in os.environ.items() if k != "MR_UNSET_TOKEN"}
    for given, message in (
        (TOKEN, "--feedback-token takes env:NAME"),
        ("env:", "--feedback-token takes env:NAME"),
        ("env:MR_UNSET_TOKEN", "environment variable MR_UNSET_TOKEN is not set"),
    ):
        result = subprocess.run(
            [str(MODELROUTE), "serve", policy, "--store", "none", "--feedback-token", given],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=tmp_path,
        )
        assert result.returncode == 2, (given, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
