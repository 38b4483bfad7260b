"""API keys end to end: ``modelroute keys`` and the admin API against a real ``modelroute
serve`` process, called with the official OpenAI and Anthropic SDKs."""

from __future__ import annotations

import time
from pathlib import Path

import anthropic
import openai
import pytest

from .support import create_key, modelroute, serving

CHAT = [{"role": "user", "content": "What is the capital of France?"}]


def _openai(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)


def _anthropic(base: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base, api_key=key, max_retries=0)


def test_required_keys_admit_active_keys_only_at_both_doors(tmp_path: Path) -> None:
    store = str(tmp_path / "records.db")
    key = create_key(store, "ci", "--route", "chat", "--rpm", "600", "--budget-usd", "2")
    listed = modelroute("keys", "list", "--store", store, "--json")
    assert listed.returncode == 0 and key not in listed.stdout + listed.stderr
    with serving(tmp_path, "--keys", "required", store=store) as gw:
        answer = _openai(gw.base, key).chat.completions.with_raw_response.create(
            model="chat", messages=CHAT
        )
        assert answer.http_response.status_code == 200
        assert answer.headers["x-modelroute-route"] == "chat"
        message = _anthropic(gw.base, key).messages.create(
            model="chat", max_tokens=20, messages=CHAT
        )
        assert message.content and message.content[0].type == "text"
        # no key, an unknown key: 401 in each door's own format
        for wrong in ("", "mr-not-a-key"):
            with pytest.raises(openai.AuthenticationError) as caught:
                _openai(gw.base, wrong or "x").chat.completions.create(
                    model="chat", messages=CHAT, extra_headers={"authorization": wrong}
                )
            assert caught.value.status_code == 401
            assert caught.value.body["code"] in ("missing_api_key", "invalid_api_key")
            with pytest.raises(anthropic.AuthenticationError) as refused:
                _anthropic(gw.base, wrong or "x").messages.create(
                    model="chat", max_tokens=20, messages=CHAT,
                    extra_headers={"x-api-key": wrong},
                )  # fmt: skip
            assert refused.value.body["error"]["type"] == "authentication_error"
        # a route the key may not use: 403
        with pytest.raises(openai.PermissionDeniedError) as denied:
            _openai(gw.base, key).chat.completions.create(model="support-triage", messages=CHAT)
        assert denied.value.body["code"] == "route_not_allowed"
        # revoked through the admin API: refused at once on this replica
        status, body = gw.admin("DELETE", "/admin/keys/ci")
        assert status == 200 and body["revoked_at"] is not None and "key" not in body
        with pytest.raises(openai.AuthenticationError):
            _openai(gw.base, key).chat.completions.create(model="chat", messages=CHAT)


def test_admin_api_creates_lists_and_guards_keys(tmp_path: Path) -> None:
    with serving(tmp_path, "--keys", "required") as gw:
        assert gw.admin("GET", "/admin/keys", token=None)[0] == 401
        assert gw.admin("GET", "/admin/keys", token="wrong")[0] == 401
        status, made = gw.admin(
            "POST", "/admin/keys", {"name": "team-a", "team": "a", "routes": ["chat"],
                                    "budget_usd": 1.5, "budget_period": "daily",
                                    "requests_per_minute": 60, "tokens_per_minute": 9000},
        )  # fmt: skip
        assert status == 201 and made["key"].startswith("mr-")
        assert (made["budget_usd"], made["budget_period"]) == (1.5, "daily")
        key = made["key"]
        # usable at once, without waiting for the ring's refresh
        reply = _openai(gw.base, key).chat.completions.create(model="chat", messages=CHAT)
        assert reply.choices[0].message.content
        status, listed = gw.admin("GET", "/admin/keys")
        assert status == 200 and [k["name"] for k in listed["keys"]] == ["team-a"]
        assert key not in str(listed) and made["key_id"] == listed["keys"][0]["key_id"]
        # bad requests: a clear 400 naming the field, a duplicate name refused
        status, bad = gw.admin("POST", "/admin/keys", {"name": "x", "requests_per_minute": "9"})
        assert status == 400 and "requests_per_minute" in bad["error"]["message"]
        status, dup = gw.admin("POST", "/admin/keys", {"name": "team-a"})
        assert status == 400 and "already named" in dup["error"]["message"]
        assert gw.admin("DELETE", "/admin/keys/nobody")[0] == 404


def test_a_key_revoked_with_the_cli_is_refused_within_the_refresh(tmp_path: Path) -> None:
    store = str(tmp_path / "records.db")
    key = create_key(store, "short-lived")
    with serving(tmp_path, "--keys", "required", "--keys-refresh", "0.2s", store=store) as gw:
        client = _openai(gw.base, key)
        assert client.chat.completions.create(model="chat", messages=CHAT).choices
        done = modelroute("keys", "revoke", "--store", store, "short-lived")
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 30  # turns a hang into a failure; no upper bound asserted
        while True:
            try:
                client.chat.completions.create(model="chat", messages=CHAT)
            except openai.AuthenticationError:
                break
            assert time.monotonic() < deadline, "the revoked key was never refused"
            time.sleep(0.1)


def test_keys_cli_errors_exit_2(tmp_path: Path) -> None:
    store = str(tmp_path / "k.db")
    create_key(store, "one")
    again = modelroute("keys", "create", "--store", store, "--name", "one")
    assert again.returncode == 2 and "already named" in again.stderr and not again.stdout
    missing = modelroute("keys", "revoke", "--store", store, "nobody")
    assert missing.returncode == 2 and "no active key" in missing.stderr
    bad = modelroute("keys", "list", "--store", "mysql://x/y")
    assert bad.returncode == 2 and "unsupported store URL" in bad.stderr
    negative = modelroute("keys", "create", "--store", store, "--name", "n", "--budget-usd", "-1")
    assert negative.returncode == 2 and "non-negative" in negative.stderr
    listed = modelroute("keys", "list", "--store", store)
    assert listed.returncode == 0 and "one" in listed.stdout
