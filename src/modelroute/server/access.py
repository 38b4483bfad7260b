"""Who may call the model endpoints: the API keys of ``modelroute keys``.

With a key ring, a request to ``/v1/*`` (but feedback, which checks its own credentials)
presents a key as ``Authorization: Bearer KEY`` or ``x-api-key: KEY``; an active key gives
the request its caller's identity. With keys required, no key or an unknown or revoked one is
401 in the caller's format; otherwise such a caller is served as before, known only by the
hash of whatever it presented. No message repeats what the caller sent.
"""

from __future__ import annotations

from modelroute.identity import ClientIdentity
from modelroute.keys import KeyRing
from modelroute.recording import presented_key
from modelroute.server.errors import HttpError

IDENTITY = "modelroute.identity"  # where the scope carries the authenticated caller
_OPEN = frozenset({"/v1/feedback"})  # checks credentials of its own (feedback.py)


class Access:
    def __init__(self, ring: KeyRing, required: bool) -> None:
        self.ring = ring
        self.required = required

    @staticmethod
    def guards(path: str) -> bool:
        return path.startswith("/v1/") and path not in _OPEN

    def admit(self, headers: dict[str, str]) -> tuple[ClientIdentity | None, HttpError | None]:
        """The caller's identity (``None``: no key of the ring), or why it is refused."""
        key = presented_key(headers)
        identity = self.ring.identity(key)
        if identity is not None or not self.required:
            return identity, None
        if key is None:
            message = "an API key is required: send Authorization: Bearer KEY or x-api-key: KEY"
            code = "missing_api_key"
        else:
            message = "invalid or revoked API key"
            code = "invalid_api_key"
        return None, HttpError(401, code, message, {}, {"www-authenticate": "Bearer"})
