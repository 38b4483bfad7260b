"""Where records are kept: SQLite (one file, zero setup) or PostgreSQL (several replicas).

``open_store(url)`` picks the store from a URL; the caller then ``await store.open()``.
"""

from __future__ import annotations

from pathlib import Path

from modelroute.records.stores.base import Store
from modelroute.records.stores.sqlite import SqliteStore

DEFAULT_URL = "./modelroute.db"

__all__ = ["DEFAULT_URL", "Store", "open_store"]


def open_store(url: str = DEFAULT_URL) -> Store:
    """``sqlite:///path`` or a plain path → SQLite; ``postgresql://`` or ``postgres://`` →
    PostgreSQL (needs asyncpg). The store is returned unopened: ``await store.open()``."""
    scheme, sep, rest = url.partition("://")
    if not sep:  # a plain path (":" may appear in it, "://" may not)
        if not url:
            raise ValueError("empty record store URL: give a path or a postgresql:// URL")
        return SqliteStore(Path(url))
    if scheme == "sqlite":
        # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy spells them.
        path = rest.removeprefix("/")
        if not path:
            raise ValueError(f"no file in record store URL {url!r}: use sqlite:///path/to.db")
        return SqliteStore(Path(path))
    if scheme in ("postgresql", "postgres"):
        from modelroute.records.stores.postgres import PostgresStore  # asyncpg only when used

        return PostgresStore(url)
    raise ValueError(
        f"unsupported record store URL scheme {scheme!r}: use a file path, sqlite:///path, "
        "or postgresql://user@host/db"
    )
