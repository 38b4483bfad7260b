"""The gateway's view of the active keys: a dictionary from a key's SHA-256 to its identity.

Authenticating a request is one SHA-256 of the presented key and one lookup: no database
round trip on the request path. The view is reloaded from the store every ``refresh_s``
seconds in the background, so a key created or revoked on any replica (or with
``modelroute keys``) takes effect everywhere within that time; on the replica whose admin
API made the change, at once. A failed reload keeps the last view and is logged (without
any key: the store holds none).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from modelroute.identity import ClientIdentity
from modelroute.keys.model import KeyRecord, hash_secret
from modelroute.keys.store import KeyStore

log = logging.getLogger("modelroute.keys")


class KeyRing:
    def __init__(self, store: KeyStore, refresh_s: float = 5.0) -> None:
        self.store = store
        self.refresh_s = refresh_s
        self._active: dict[str, ClientIdentity] = {}
        self._task: asyncio.Task[None] | None = None
        self.loaded = False

    def identity(self, secret: str | None) -> ClientIdentity | None:
        """The caller holding ``secret``, or ``None`` (no key, unknown, or revoked)."""
        if not secret:
            return None
        return self._active.get(hash_secret(secret))

    def apply(self, record: KeyRecord) -> None:
        """A change made here (the admin API): effective now, without waiting for a reload."""
        if record.active:
            self._active[record.key_hash] = record.identity()
        else:
            self._active.pop(record.key_hash, None)

    async def reload(self) -> None:
        records = await self.store.all()
        self._active = {r.key_hash: r.identity() for r in records if r.active}
        self.loaded = True

    async def start(self) -> None:
        try:
            await self.reload()
        except Exception as exc:  # the store may come up later: keep trying in the loop
            log.warning("API keys could not be loaded yet (%s); retrying", type(exc).__name__)
        self._task = asyncio.create_task(self._refresh(), name="modelroute-keys")

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.reload()
            except Exception as exc:
                log.warning("API keys reload failed (%s): keeping the last view", exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
