"""API keys: issued once, stored hashed, each carrying the caller's identity.

- ``model.py``: ``KeyRecord`` (what is stored: the key's SHA-256, never the key) and
  ``new_secret``;
- ``store.py``: the ``api_keys`` table in the record store's database (SQLite or
  PostgreSQL), read and written by ``modelroute keys`` and the admin API;
- ``ring.py``: the gateway's in-memory view of the active keys, refreshed off the request
  path, so authenticating a request is one hash and one dictionary lookup.
"""

from modelroute.keys.model import KeyRecord, KeySpec, hash_secret, new_secret
from modelroute.keys.ring import KeyRing
from modelroute.keys.store import KeyRefused, KeyStore, open_key_store

__all__ = [
    "KeyRecord",
    "KeyRefused",
    "KeyRing",
    "KeySpec",
    "KeyStore",
    "hash_secret",
    "new_secret",
    "open_key_store",
]
