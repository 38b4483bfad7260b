"""No client key, provider key or admin token appears in any output of a run: the log (debug,
JSON lines), the records (the SQLite file, its WAL, the spool), /metrics, error bodies."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest

from ..serve_process import quickstart_policy
from .support import ADMIN_TOKEN, create_key, serving

PROVIDER_KEY = "sk-PROVIDER-5e1d9c3b7a2f4e6d8c0b1a3f5e7d9c2b"
WRONG_KEY = "mr-WRONG-1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d"
CHAT = [{"role": "user", "content": "What is the capital of France?"}]


def _body(url: str, headers: dict[str, str], data: bytes | None = None) -> bytes:
    request = urllib.request.Request(url, data, headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as err:
        return bytes(err.read())


def test_no_key_appears_in_logs_records_metrics_or_errors(tmp_path: Path) -> None:
    policy, _ = quickstart_policy(tmp_path)
    text = policy.read_text().replace(
        "    allow_floating: true", "    allow_floating: true\n    api_key: env:MR_PROVIDER_KEY"
    )
    policy.write_text(text)
    store = str(tmp_path / "records.db")
    client_key = create_key(store, "grep-me", "--route", "chat")
    outputs: list[bytes] = []
    with serving(
        tmp_path, "--keys", "required", "--log-level", "debug", "--log-format", "json",
        "--feedback-token", "env:MR_ADMIN", "--content", "full",
        env={"MR_PROVIDER_KEY": PROVIDER_KEY}, policy=policy, store=store,
    ) as gw:  # fmt: skip
        client = openai.OpenAI(base_url=f"{gw.base}/v1", api_key=client_key, max_retries=0)
        reply = client.chat.completions.with_raw_response.create(model="chat", messages=CHAT)
        request_id = reply.headers["x-modelroute-request-id"]
        streamed = client.chat.completions.create(model="chat", messages=CHAT, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
        for wrong in (WRONG_KEY, PROVIDER_KEY, ADMIN_TOKEN):  # the wrong key at the wrong door
            with pytest.raises(openai.AuthenticationError) as caught:
                openai.OpenAI(base_url=f"{gw.base}/v1", api_key=wrong, max_retries=0)\
                    .chat.completions.create(model="chat", messages=CHAT)  # fmt: skip
            outputs.append(json.dumps(caught.value.body).encode())
        with pytest.raises(openai.PermissionDeniedError) as denied:  # a route it may not use
            client.chat.completions.create(model="support-triage", messages=CHAT)
        outputs.append(json.dumps(denied.value.body).encode())
        outputs.append(_body(f"{gw.base}/admin/keys", {"authorization": f"Bearer {WRONG_KEY}"}))
        outputs.append(_body(f"{gw.base}/admin/keys", {"authorization": f"Bearer {ADMIN_TOKEN}"}))
        feedback = json.dumps({"request_id": request_id, "score": 1}).encode()
        outputs.append(_body(f"{gw.base}/v1/feedback", {"authorization": f"Bearer {WRONG_KEY}",
                                                        "content-type": "application/json"},
                             feedback))  # fmt: skip
        outputs.append(_body(f"{gw.base}/metrics", {}))
        outputs.append(_body(f"{gw.base}/readyz", {}))
    outputs.append(gw.log.read_bytes())
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix != ".yaml":  # the records, WAL, spool, key table
            outputs.append(path.read_bytes())
    seen = b"\n".join(outputs)
    assert b"modelroute.policy" in seen and request_id.encode() in seen  # the outputs are real
    for secret in (client_key, PROVIDER_KEY, WRONG_KEY, ADMIN_TOKEN):
        assert secret.encode() not in seen, f"{secret[:6]}... leaked"
