"""A provider written outside the package: the README's example provider, registered through
the ``modelroute.providers`` entry point group as a package would register it, serves
requests through ``modelroute serve`` in a real process; ``modelroute check`` knows its kind
only where it is installed. Also the same provider passed in code, and the errors for a kind
nobody serves."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from modelroute import PolicyError, Router, load_policy_text

from .gateway.harness import free_port
from .serve_process import PATIENCE_S, wait_ready
from .test_readme import README, blocks


def _fenced(marker: str, lang: str) -> str:
    found = re.search(rf"<!-- readme:{marker} -->\n```{lang}\n(.*?)```", README, re.S)
    assert found, f"README lost its {marker} block"
    return found.group(1)


def _plugin(root: Path) -> Path:
    """A folder holding the README's provider as an installed distribution would: the module,
    and a ``*.dist-info`` whose ``entry_points.txt`` says what the README's toml block says."""
    declared = tomllib.loads(_fenced("provider-entry-point", "toml"))
    group = declared["project"]["entry-points"]["modelroute.providers"]
    site = root / "site"
    site.mkdir()
    [(kind, target)] = group.items()
    module = target.split(":")[0]
    (site / f"{module}.py").write_text(blocks()["readme:provider"])
    info = site / "echo_provider-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-provider\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[modelroute.providers]\n{kind} = {target}\n")
    return site


def _env(site: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return env


def _cli(cwd: Path, site: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelroute", *args],
        cwd=cwd,
        env=_env(site),
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )


def _post(base: str, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    request = urllib.request.Request(
        f"{base}/v1/chat/completions",
        json.dumps(body).encode(),
        {"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=PATIENCE_S) as response:
        return response.read(), dict(response.headers)


QUESTION = {"role": "user", "content": "What is the capital of France?"}
REVERSED = "?ecnarF fo latipac eht si tahW"


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "mirror.yaml"
    path.write_text(_fenced("provider-policy", "yaml"))
    return path


def test_an_installed_provider_serves_through_modelroute_serve(
    tmp_path: Path, policy_file: Path
) -> None:
    site = _plugin(tmp_path)
    port = free_port()
    with (tmp_path / "serve.err").open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelroute", "serve", str(policy_file), "--port", str(port),
             "--store", "none"],
            cwd=tmp_path, env=_env(site), stdout=subprocess.DEVNULL, stderr=err,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        raw, headers = _post(base, {"model": "chat", "messages": [QUESTION]})
        answer = json.loads(raw)
        assert answer["choices"][0]["message"]["content"] == REVERSED
        assert answer["model"] == "echo-1"
        assert headers["x-modelroute-model"] == "mirror"
        raw, _ = _post(base, {"model": "chat", "messages": [QUESTION], "stream": True})
        events = [line[6:] for line in raw.decode().splitlines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        pieces = [json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1]]
        assert "".join(pieces).strip() == REVERSED
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(PATIENCE_S)


def test_check_knows_an_installed_kind_only_where_it_is_installed(
    tmp_path: Path, policy_file: Path
) -> None:
    site = _plugin(tmp_path)
    installed = _cli(tmp_path, site, "check", str(policy_file))
    assert installed.returncode == 0, installed.stderr
    missing = _cli(tmp_path, None, "check", str(policy_file))
    assert missing.returncode == 2
    assert "mirror.yaml:3:15" in missing.stderr  # file:line:column of the provider field
    assert "unknown provider kind 'echo'" in missing.stderr
    assert "known kinds: openai, anthropic, simulator" in missing.stderr


def test_a_misspelt_kind_gets_a_suggestion(tmp_path: Path, policy_file: Path) -> None:
    policy_file.write_text(policy_file.read_text().replace("provider: echo", "provider: opnai"))
    result = _cli(tmp_path, None, "check", str(policy_file))
    assert result.returncode == 2
    assert "unknown provider kind 'opnai'" in result.stderr
    assert "did you mean 'openai'?" in result.stderr


def test_serve_stops_at_start_when_the_entry_point_fails_to_load(
    tmp_path: Path, policy_file: Path
) -> None:
    site = _plugin(tmp_path)
    (site / "echo_provider.py").write_text("raise ImportError('needs acme-sdk')\n")
    result = _cli(tmp_path, site, "serve", str(policy_file), "--port", str(free_port()))
    assert result.returncode == 2
    assert "provider kind 'echo' (echo_provider:EchoProvider) failed to load" in result.stderr
    assert "ImportError: needs acme-sdk" in result.stderr
    assert "Traceback" not in result.stderr


def _readme_provider() -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(blocks()["readme:provider"], "README provider", "exec"), namespace)
    return namespace["EchoProvider"]()


async def test_a_provider_passed_in_code_serves_the_router(policy_file: Path) -> None:
    async with Router.from_file(policy_file, providers={"echo": _readme_provider()}) as router:
        result = await router.chat({"model": "chat", "messages": [QUESTION]})
    assert result.completion.content == REVERSED
    assert result.record.final_model == "mirror"
    assert [(a.model, a.provider, a.outcome) for a in result.record.attempts] == [
        ("mirror", "echo", "ok")
    ]


def test_a_kind_no_provider_serves_is_refused_when_the_router_is_built(
    policy_file: Path,
) -> None:
    policy = load_policy_text(policy_file.read_text(), "mirror.yaml", provider_kinds=["echo"])
    with pytest.raises(PolicyError) as caught:
        Router(policy)
    [problem] = caught.value.problems
    assert (problem.file, problem.path) == ("mirror.yaml", "models.mirror.provider")
    assert problem.message == "unknown provider kind 'echo'"
    assert problem.hint is not None and "anthropic, openai, simulator" in problem.hint
