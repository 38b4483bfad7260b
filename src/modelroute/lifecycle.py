"""A running gateway's policy: reloads, canaries, promotion and rollback, without a restart.

Every change is validated before anything changes: a policy that does not load is refused
with its located problems (``PolicyError``) and the current one keeps serving. A request
already planned finishes on the policy it started with (the router hands each request the
policy object it planned with); the next request is planned, and recorded, with the new
policy's hash.

Ways in: ``SIGHUP`` (re-read the policy file, and the canary file if any), the admin API
(``/admin/policy``), or a ``PolicySync`` (several replicas: a change made on one is published
through Redis and applied by all, so every replica converges on one policy hash).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from modelroute.canary import Canary, parse_sticky
from modelroute.policy import Policy, load_policy_text
from modelroute.router import Router

log = logging.getLogger("modelroute.policy")


@dataclass(frozen=True, slots=True)
class Rollout:
    """What serves: the policy's text and file name, and a canary's, with its share."""

    text: str
    file: str
    canary_text: str | None = None
    canary_file: str | None = None
    percent: float = 0.0
    sticky: str = "key"

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text, "file": self.file, "canary_text": self.canary_text,
            "canary_file": self.canary_file, "percent": self.percent, "sticky": self.sticky,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rollout:
        return cls(**data)


class Publisher(Protocol):
    async def publish(self, rollout: Rollout) -> None: ...


class PolicyLifecycle:
    """The policy ``router`` serves, changed only through validated rollouts."""

    def __init__(
        self,
        router: Router,
        path: str | None,
        *,
        canary_path: str | None = None,
        canary_percent: float = 0.0,
        sticky: str = "key",
        provider_kinds: Any = None,
    ) -> None:
        self.router = router
        self.path = path
        self.canary_path = canary_path
        self.canary_percent = canary_percent
        self.sticky = parse_sticky(sticky)
        self.kinds = provider_kinds
        self.rollout: Rollout | None = None
        self.publisher: Publisher | None = None
        self.listeners: list[Callable[[Policy], None]] = []

    # --- what the ways in call -------------------------------------------------------------

    def reload_files(self) -> Rollout:
        """Re-read the policy file (and the canary file): SIGHUP and ``POST
        /admin/policy/reload``. Raises ``PolicyError`` (or ``OSError``) and changes nothing."""
        if self.path is None:
            raise ValueError("this gateway was not started from a policy file")
        canary_text = None
        if self.canary_path is not None:
            canary_text = Path(self.canary_path).read_text(encoding="utf-8")
        return self.apply(
            Rollout(
                Path(self.path).read_text(encoding="utf-8"), self.path, canary_text,
                self.canary_path, self.canary_percent if canary_text else 0.0, self.sticky,
            )
        )  # fmt: skip

    def replace_policy(self, text: str, file: str = "<admin>") -> Rollout:
        """Serve ``text`` as the policy; a running canary keeps running."""
        now = self.current()
        return self.apply(
            Rollout(text, file, now.canary_text, now.canary_file, now.percent, now.sticky)
        )

    def start_canary(self, text: str, percent: float, sticky: str, file: str) -> Rollout:
        now = self.current()
        return self.apply(Rollout(now.text, now.file, text, file, percent, parse_sticky(sticky)))

    def stop_canary(self) -> Rollout:
        """Roll the canary back: every request on the policy again."""
        now = self.current()
        return self.apply(Rollout(now.text, now.file, sticky=now.sticky))

    def promote(self) -> Rollout:
        """The canary becomes the policy for every request."""
        now = self.current()
        if now.canary_text is None or now.canary_file is None:
            raise ValueError("no canary is running: nothing to promote")
        return self.apply(Rollout(now.canary_text, now.canary_file, sticky=now.sticky))

    # --- the one place a change happens ------------------------------------------------------

    def current(self) -> Rollout:
        if self.rollout is None:
            raise ValueError("the gateway's policy text is not known (started without a file)")
        return self.rollout

    def apply(self, rollout: Rollout, *, publish: bool = True) -> Rollout:
        """Validate ``rollout`` whole, then serve it. Raises ``PolicyError`` (located
        problems) or ``ValueError`` and changes nothing."""
        policy = load_policy_text(rollout.text, rollout.file, self.kinds)
        canary = None
        if rollout.canary_text is not None and rollout.canary_file is not None:
            canary_policy = load_policy_text(rollout.canary_text, rollout.canary_file, self.kinds)
            canary = Canary(canary_policy, rollout.percent, rollout.sticky)
        self.router.use_policy(policy, canary)
        self.rollout = rollout
        log.warning(
            "policy %s now serving%s",
            policy.short_hash,
            f"; canary {canary.policy.short_hash} at {canary.percent:g}%" if canary else "",
        )
        for listener in self.listeners:
            listener(policy)
        if publish and self.publisher is not None:
            task = asyncio.get_running_loop().create_task(self.publisher.publish(rollout))
            _keep(task)
        return rollout

    def status(self) -> dict[str, Any]:
        policy, canary = self.router.policy, self.router.canary
        return {
            "hash": policy.hash,
            "version": policy.version,
            "file": self.rollout.file if self.rollout else None,
            "canary": None
            if canary is None
            else {
                "hash": canary.policy.hash,
                "version": canary.policy.version,
                "percent": canary.percent,
                "sticky": canary.sticky,
            },
        }

    # --- SIGHUP ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve the files as a rollout (so the admin API can build on them) and reload on
        SIGHUP (one process; with ``--workers N`` send it to each worker, or use the admin
        API with a shared ``PolicySync``)."""
        if self.path is not None and self.rollout is None:
            self.reload_files_quietly()
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, self.reload_files_quietly)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread; Windows
            log.info("SIGHUP reloads are not available in this process")

    def reload_files_quietly(self) -> None:
        """A reload whose failure is logged with its problems (the old policy serves on)."""
        try:
            self.reload_files()
        except Exception as exc:
            log.error("policy reload refused; the current policy keeps serving:\n%s", exc)

    async def close(self) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)


_TASKS: set[asyncio.Task[None]] = set()


def _keep(task: asyncio.Task[None]) -> None:
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
