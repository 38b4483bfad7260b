"""Redis for the shared-state tests: the machine's own on 127.0.0.1:6379
(``MODELROUTE_TEST_REDIS``), each test under a key prefix of its own, deleted afterwards.
Without Redis these tests skip, except under ``CI=true`` where they fail."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
import redis

REDIS_URL = os.environ.get("MODELROUTE_TEST_REDIS", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"


def redis_reachable() -> bool:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def require_redis() -> None:
    if not redis_reachable():
        if IN_CI:
            pytest.fail(f"Redis is not reachable at {REDIS_URL} (CI must reach it)")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")


def unique_prefix() -> str:
    return f"mr-test-{secrets.token_hex(4)}:"


def delete_prefix(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own in the test Redis, its keys deleted afterwards."""
    require_redis()
    prefix = unique_prefix()
    yield prefix
    delete_prefix(prefix)
