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
from typing import TYPE_CHECKING, NamedTuple

from modelroute.outcomes.outcome import Outcome, OutcomeSource

if TYPE_CHECKING:
    from modelroute.state.rolling import Served


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


def feedback_outcome(
    request_id: str, served: Served, score: float, source: str | None, now: float
) -> Outcome:
    """A rating as an outcome of the request it rates: counted in measured quality per
    route, model and the version that answered. Its id follows from the request, route and
    model, so a later rating of the same request replaces it."""
    assert served.model is not None
    return Outcome(
        source=OutcomeSource.FEEDBACK,
        grader="feedback",
        score=score,
        model=served.model,
        created_at=now,
        prompt_id=request_id,
        task=served.task,
        route=served.route,
        reported_model=served.reported_model,
        cost_usd=served.cost_usd,
        latency_ms=served.latency_ms,
        request_id=request_id,
        detail={} if source is None else {"source": source},
    )
