"""Replicas converge on one policy through Redis.

The current rollout (policy text, canary text and share) is one Redis key; a replica that
changes it (admin API, SIGHUP) sets the key, then publishes on a channel. Every replica, on a
message, reads the key (not the message: two changes racing are settled by whichever set the
key last, so all replicas land on the same one) and applies it if it differs from what it
serves. Pub/sub delivers at most once, so the key is also polled every ``poll_s`` seconds. A
starting replica adopts the key's rollout if there is one, else publishes its own.

Redis unreachable: the replica keeps serving what it has, logs it, and retries; changes made
meanwhile on other replicas arrive with the next successful poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson

from modelroute.lifecycle import PolicyLifecycle, Rollout

log = logging.getLogger("modelroute.policy")


class PolicySync:
    def __init__(
        self, url: str, lifecycle: PolicyLifecycle, prefix: str = "modelroute:", poll_s: float = 5.0
    ) -> None:
        self.url = url
        self.lifecycle = lifecycle
        self.key = f"{prefix}policy"
        self.channel = f"{prefix}policy:changed"
        self.poll_s = poll_s
        self._redis: Any = None
        self._applied: bytes | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)
        self.lifecycle.publisher = self
        try:
            if not await self._adopt():
                await self.publish(self.lifecycle.current())
        except Exception as exc:
            log.warning("policy sync: Redis unreachable at start (%s); retrying", exc)
        self._tasks = [
            asyncio.create_task(self._listen(), name="modelroute-policy-listen"),
            asyncio.create_task(self._poll(), name="modelroute-policy-poll"),
        ]

    async def publish(self, rollout: Rollout) -> None:
        payload = orjson.dumps(rollout.to_dict())
        self._applied = payload
        try:
            await self._redis.set(self.key, payload)
            await self._redis.publish(self.channel, b"1")
        except Exception as exc:
            log.error("policy sync: could not publish the new policy (%s)", exc)

    async def _adopt(self) -> bool:
        """Apply the stored rollout if it differs from ours; ``False`` if none is stored."""
        payload = await self._redis.get(self.key)
        if payload is None:
            return False
        if payload != self._applied:
            try:
                self.lifecycle.apply(Rollout.from_dict(orjson.loads(payload)), publish=False)
            except Exception as exc:  # validated by its publisher; a newer version may differ
                log.error("policy sync: the published policy does not load here: %s", exc)
            self._applied = payload
        return True

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._adopt()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("policy sync: subscription lost (%s); resubscribing", exc)
                await asyncio.sleep(1.0)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self._adopt()
            except Exception as exc:
                log.warning("policy sync: poll failed (%s)", exc)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._redis is not None:
            await self._redis.aclose()
