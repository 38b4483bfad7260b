"""The ``api_keys`` table, beside the records in the record store's database.

Why there and not in Redis: keys are configuration that must survive anything (a Redis
restart without persistence, an eviction policy, a flush), every deployment already has the
record store, and replicas read the table only every few seconds (``KeyRing``), never per
request. The table is created on first use (``CREATE TABLE IF NOT EXISTS``) and is not part
of the records' versioned schema: nothing in it is derived from records.

SQLite calls run in a worker thread (``asyncio.to_thread``), one short connection each;
PostgreSQL uses asyncpg, one connection per call (admin and refresh traffic only).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing as contextlib_closing
from pathlib import Path
from typing import Any, Protocol

import orjson

from modelroute.identity import Budget, RateLimits
from modelroute.keys.model import KeyRecord, KeySpec, budget_period, hash_secret, new_secret

COLUMNS = (
    "key_hash", "name", "team", "routes", "budget_usd", "budget_period",
    "requests_per_minute", "tokens_per_minute", "created_at", "revoked_at",
)  # fmt: skip
_CREATE = (
    "CREATE TABLE IF NOT EXISTS api_keys (key_hash TEXT PRIMARY KEY, name TEXT NOT NULL, "
    "team TEXT, routes TEXT, budget_usd DOUBLE PRECISION, budget_period TEXT, "
    "requests_per_minute INTEGER, tokens_per_minute INTEGER, "
    "created_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION)"
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM api_keys ORDER BY created_at"


class KeyRefused(Exception):
    """A key operation refused (a name already in use, nothing to revoke): one line for
    the CLI (exit 2) or the admin API (4xx)."""


class KeyStore(Protocol):
    async def all(self) -> list[KeyRecord]:
        """Every key, revoked ones included, oldest first."""
        ...

    async def create(self, spec: KeySpec) -> tuple[str, KeyRecord]:
        """A new key: the secret (shown once, stored nowhere) and its record."""
        ...

    async def revoke(self, key_id_or_name: str) -> KeyRecord:
        """Revoke the active key with this public id or name; raises ``KeyRefused``."""
        ...


def open_key_store(url: str) -> KeyStore:
    """The same URLs as ``--store``: a path or ``sqlite:///path``, or ``postgresql://``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        if not url:
            raise ValueError("empty store URL: give a path or a postgresql:// URL")
        return SqliteKeyStore(Path(url))
    if scheme == "sqlite" and rest.removeprefix("/"):
        return SqliteKeyStore(Path(rest.removeprefix("/")))
    if scheme in ("postgresql", "postgres"):
        return PostgresKeyStore(url)
    raise ValueError(f"unsupported store URL {scheme}://...: use a path or postgresql://")


def _row(record: KeyRecord) -> tuple[Any, ...]:
    s = record.spec
    return (
        record.key_hash, s.name, s.team,
        None if s.routes is None else orjson.dumps(sorted(s.routes)).decode(),
        None if s.budget is None else s.budget.usd,
        None if s.budget is None else s.budget.period,
        s.limits.requests_per_minute, s.limits.tokens_per_minute,
        record.created_at, record.revoked_at,
    )  # fmt: skip


def _record(row: Sequence[Any]) -> KeyRecord:
    key_hash, name, team, routes, usd, period, rpm, tpm, created, revoked = row
    budget = None if usd is None else Budget(float(usd), budget_period(period))
    spec = KeySpec(
        name,
        team,
        None if routes is None else frozenset(orjson.loads(routes)),
        budget,
        RateLimits(rpm, tpm),
    )
    return KeyRecord(key_hash, spec, float(created), None if revoked is None else float(revoked))


def _find_active(records: list[KeyRecord], key_id_or_name: str) -> KeyRecord:
    active = [r for r in records if r.active]
    found = [r for r in active if r.key_id == key_id_or_name] or [
        r for r in active if r.spec.name == key_id_or_name
    ]
    if not found:
        raise KeyRefused(f"no active key with id or name {key_id_or_name!r}")
    return found[0]


def _new(records: list[KeyRecord], spec: KeySpec) -> tuple[str, KeyRecord]:
    if any(r.active and r.spec.name == spec.name for r in records):
        raise KeyRefused(f"an active key is already named {spec.name!r}; revoke it or pick another")
    secret = new_secret()
    return secret, KeyRecord(hash_secret(secret), spec, time.time())


class SqliteKeyStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.execute(_CREATE)
        return db

    def _all(self) -> list[KeyRecord]:
        with contextlib_closing(self._connect()) as db:
            return [_record(row) for row in db.execute(_SELECT)]

    def _create(self, spec: KeySpec) -> tuple[str, KeyRecord]:
        with contextlib_closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                secret, record = _new([_record(r) for r in db.execute(_SELECT)], spec)
                marks = ", ".join("?" * len(COLUMNS))
                db.execute(f"INSERT INTO api_keys VALUES ({marks})", _row(record))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return secret, record

    def _revoke(self, key_id_or_name: str) -> KeyRecord:
        with contextlib_closing(self._connect()) as db:
            found = _find_active([_record(r) for r in db.execute(_SELECT)], key_id_or_name)
            now = time.time()
            db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_hash = ?", (now, found.key_hash)
            )
            return KeyRecord(found.key_hash, found.spec, found.created_at, now)

    async def all(self) -> list[KeyRecord]:
        return await asyncio.to_thread(self._all)

    async def create(self, spec: KeySpec) -> tuple[str, KeyRecord]:
        return await asyncio.to_thread(self._create, spec)

    async def revoke(self, key_id_or_name: str) -> KeyRecord:
        return await asyncio.to_thread(self._revoke, key_id_or_name)


class PostgresKeyStore:
    _LOCK = 0x6B657973  # pg_advisory_xact_lock: one key creation at a time (unique names)

    def __init__(self, url: str) -> None:
        self.url = url

    async def _connect(self) -> Any:
        import asyncpg

        db = await asyncpg.connect(self.url, timeout=10)
        await db.execute(_CREATE)
        return db

    async def all(self) -> list[KeyRecord]:
        db = await self._connect()
        try:
            return [_record(tuple(row)) for row in await db.fetch(_SELECT)]
        finally:
            await db.close()

    async def create(self, spec: KeySpec) -> tuple[str, KeyRecord]:
        db = await self._connect()
        try:
            async with db.transaction():
                await db.execute("SELECT pg_advisory_xact_lock($1)", self._LOCK)
                records = [_record(tuple(row)) for row in await db.fetch(_SELECT)]
                secret, record = _new(records, spec)
                marks = ", ".join(f"${i + 1}" for i in range(len(COLUMNS)))
                await db.execute(f"INSERT INTO api_keys VALUES ({marks})", *_row(record))
            return secret, record
        finally:
            await db.close()

    async def revoke(self, key_id_or_name: str) -> KeyRecord:
        db = await self._connect()
        try:
            records = [_record(tuple(row)) for row in await db.fetch(_SELECT)]
            found = _find_active(records, key_id_or_name)
            now = time.time()
            await db.execute(
                "UPDATE api_keys SET revoked_at = $1 WHERE key_hash = $2", now, found.key_hash
            )
            return KeyRecord(found.key_hash, found.spec, found.created_at, now)
        finally:
            await db.close()
