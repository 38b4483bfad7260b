"""Stored responses behind API keys, in a real ``modelroute serve --keys required --state
redis://`` process called with the official ``openai`` SDK: a key sees only the responses it
created (any other key gets a 404, and cannot continue them), and the responses live in
Redis under the deployment's prefix for ``--responses-ttl``."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
import redis

from ..conftest import ROOT
from ..state.conftest import REDIS_URL
from .support import create_key, modelroute, serving


def test_a_key_sees_only_its_own_stored_responses(tmp_path: Path, redis_prefix: str) -> None:
    store = str(tmp_path / "records.db")
    mine, theirs = create_key(store, "mine"), create_key(store, "theirs")
    state = f"{REDIS_URL}?prefix={redis_prefix}"
    args = ("--keys", "required", "--state", state, "--responses-ttl", "1h")
    with serving(tmp_path, *args, store=store) as gw:
        owner = openai.OpenAI(base_url=f"{gw.base}/v1", api_key=mine, max_retries=0)
        other = openai.OpenAI(base_url=f"{gw.base}/v1", api_key=theirs, max_retries=0)
        created = owner.responses.create(model="chat", input="What is the capital of France?")
        assert owner.responses.retrieve(created.id).output_text == created.output_text
        assert owner.responses.input_items.list(created.id).data
        for read in (other.responses.retrieve, other.responses.input_items.list):
            with pytest.raises(openai.NotFoundError):
                read(created.id)
        with pytest.raises(openai.NotFoundError):
            other.responses.delete(created.id)
        with pytest.raises(openai.BadRequestError) as caught:
            other.responses.create(model="chat", input="and?", previous_response_id=created.id)
        assert caught.value.code == "previous_response_not_found"
        follow = owner.responses.create(
            model="chat", input="And of Spain?", previous_response_id=created.id
        )
        assert follow.previous_response_id == created.id
        check = redis.Redis.from_url(REDIS_URL)
        try:
            kept = [f"{redis_prefix}responses:{created.id}", f"{redis_prefix}responses:{follow.id}"]
            assert check.exists(*kept) == 2
            assert all(0 < check.pttl(key) <= 3_600_000 for key in kept)  # --responses-ttl 1h
        finally:
            check.close()
        owner.responses.delete(created.id)  # still there for the other key's attempt above
        with pytest.raises(openai.NotFoundError):
            owner.responses.retrieve(created.id)


def test_a_responses_ttl_that_is_not_a_duration_exits_2() -> None:
    policy = str(ROOT / "examples" / "quickstart.yaml")
    done = modelroute("serve", policy, "--responses-ttl", "0", "--store", "none")
    assert done.returncode == 2 and "--responses-ttl" in done.stderr
