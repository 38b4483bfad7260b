"""Policy reloads on a running ``modelroute serve``: under load from a separate process none
is dropped and records carry the new hash; a bad policy is refused with its located problems
while the old one keeps serving."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from modelroute.policy import load_policy
from modelroute.records.stores import open_store

from ..serve_process import get_json, post_chat, wait_for
from .support import serving

LOAD = Path(__file__).with_name("load.py")


def _variant(policy: Path, version: str, price: float) -> str:
    """The policy under another version and another price of ``small`` (the hash covers
    what routes, not the version's name)."""
    text = policy.read_text().replace('version: "quickstart-2026-11"', f'version: "{version}"')
    return text.replace("prices: {input: 0.15,", f"prices: {{input: {price},")


def _stored(store: str, ids: list[str]) -> list[dict]:  # type: ignore[type-arg]
    async def read() -> list[dict]:  # type: ignore[type-arg]
        s = open_store(store)
        await s.open()
        try:
            return await s.get_many(ids)
        finally:
            await s.close()

    return asyncio.run(read())


def test_reloads_under_load_drop_no_request(tmp_path: Path) -> None:
    with serving(tmp_path) as gw:
        texts = {v: _variant(gw.policy, v, p) for v, p in (("reload-a", 0.16), ("reload-b", 0.17))}
        hashes = {}
        for version, text in texts.items():
            path = tmp_path / f"{version}.yaml"
            path.write_text(text)
            hashes[version] = load_policy(path).hash
        assert len(set(hashes.values())) == 2
        stop = tmp_path / "stop-load"
        load = subprocess.Popen(
            [sys.executable, str(LOAD), gw.base, str(stop), "4"], stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert load.stdout is not None and load.stdout.readline().strip() == "started"
            time.sleep(0.5)
            for n in range(6):  # by SIGHUP and by the admin API, in turn
                version = "reload-a" if n % 2 else "reload-b"
                if n % 3 == 2:
                    status, body = gw.admin("POST", "/admin/policy", {"policy": texts[version]})
                    assert status == 200 and body["hash"] == hashes[version]
                else:
                    gw.policy.write_text(texts[version])
                    os.kill(gw.proc.pid, signal.SIGHUP)
                    wait_for(
                        lambda v=version: (
                            get_json(f"{gw.base}/readyz")[1]["policy_hash"] == hashes[v]
                        ),
                        f"the gateway never served {version}",
                    )
                time.sleep(0.3)
        finally:
            stop.touch()
            out, _ = load.communicate(timeout=120)
        result = json.loads(out.strip().splitlines()[-1])
        assert set(result["statuses"]) == {"200"}, result["statuses"]
        final = get_json(f"{gw.base}/readyz")[1]["policy_hash"]
        assert final == hashes["reload-a"]  # the last change (n=5, SIGHUP) wins
        _, last_id = post_chat(gw.base)
    ids = [i for i in result["ids"] if i]
    assert len(ids) == sum(result["statuses"].values()) >= 20
    stored = {r["request_id"]: r for r in _stored(gw.store, [*ids, last_id])}
    assert len(stored) == len(ids) + 1  # every answered request has its record
    seen = {r["policy_hash"] for r in stored.values()}
    assert {hashes["reload-a"], hashes["reload-b"]} <= seen
    assert stored[last_id]["policy_hash"] == hashes["reload-a"]


def test_a_bad_policy_is_refused_and_the_old_one_serves_on(tmp_path: Path) -> None:
    with serving(tmp_path) as gw:
        before = get_json(f"{gw.base}/readyz")[1]["policy_hash"]
        good = gw.policy.read_text()
        gw.policy.write_text(good.replace("kind: cheapest_qualified", "kind: cheapest"))
        os.kill(gw.proc.pid, signal.SIGHUP)
        wait_for(lambda: b"policy reload refused" in gw.log.read_bytes(), "no refusal logged")
        logged = gw.log.read_text()
        assert f"{gw.policy}:" in logged and "strategy" in logged  # located: file and line
        assert get_json(f"{gw.base}/readyz")[1]["policy_hash"] == before
        answer, _ = post_chat(gw.base)
        assert answer["choices"][0]["message"]["content"]
        bad = "models:\n  m: {provider: simulator\nroutes: {}\n"
        status, body = gw.admin("POST", "/admin/policy", raw=bad.encode())
        assert status == 422 and body["error"]["code"] == "invalid_policy"
        assert body["error"]["problems"][0]["line"] is not None
        unknown = good.replace("models: [small, large]", "models: [small, huge]")
        status, body = gw.admin("POST", "/admin/policy", {"policy": unknown})
        assert status == 422 and "huge" in json.dumps(body)  # valid YAML, wrong meaning
        assert get_json(f"{gw.base}/readyz")[1]["policy_hash"] == before
        status, body = gw.admin("POST", "/admin/policy/reload")
        assert status == 422 and body["error"]["problems"]  # the file is still the bad one
        gw.policy.write_text(good)
        gw.policy.write_text(_variant(gw.policy, "fixed", 0.2))
        status, body = gw.admin("POST", "/admin/policy/reload")
        assert status == 200 and body["hash"] != before and body["version"] == "fixed"
