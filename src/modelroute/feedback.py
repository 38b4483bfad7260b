"""Who may give feedback on a request, and what came of it.

Feedback steers routing (measured quality replaces a model's prior), so it is accepted only
from the caller that made the request, recognised by its client key compared as the hash the
record keeps, or from a trusted party: the holder of the gateway's feedback token, or library
code calling ``Router.feedback`` directly. A request made without credentials belongs to every
caller without credentials: a gateway that hands out no client keys cannot tell them apart.
"""

from __future__ import annotations

import hmac
from enum import StrEnum
from typing import NamedTuple


class FeedbackResult(StrEnum):
    STORED = "stored"
    UNKNOWN_REQUEST = "unknown_request"
    NO_CREDENTIALS = "no_credentials"  # the request was made with a key; none was presented
    NOT_OWNER = "not_owner"  # presented a key, but not the one the request was made with


class Caller(NamedTuple):
    key_id: str | None = None  # the hash of the key presented (as records keep it); None: none
    trusted: bool = False  # may rate any request

    def refusal(self, owner_key_id: str | None) -> FeedbackResult | None:
        """Why this caller may not rate a request made with ``owner_key_id``; None if it may."""
        if self.trusted:
            return None
        if self.key_id is None:
            return None if owner_key_id is None else FeedbackResult.NO_CREDENTIALS
        if owner_key_id is not None and hmac.compare_digest(self.key_id, owner_key_id):
            return None
        return FeedbackResult.NOT_OWNER


TRUSTED = Caller(trusted=True)
