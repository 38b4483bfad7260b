"""The request record and its attempts, built from values the engine already holds.

One ``RequestRecord`` per client request, success or failure; one ``Attempt`` per upstream
call (retries, fallbacks, escalations and hedges each count). Serialising happens off the
request path, in whatever sink receives the record.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Protocol

from modelroute.planner import Decision
from modelroute.records.planner_input import PlannerInput
from modelroute.types import Usage


class RequestStatus(StrEnum):
    """How a request ended. A ``StrEnum``: stores keep the same strings, and a status read
    back from a store (a plain string) compares equal to its member."""

    OK = "ok"
    FAILED = "failed"  # every attempt failed
    REJECTED = "rejected"  # no route or model of that name
    INFEASIBLE = "infeasible"  # no candidate met the constraints (or every circuit open)
    CLIENT_ERROR = "client_error"  # the request itself was wrong
    STREAM_ERROR = "stream_error"  # a stream broke after its first byte
    CANCELLED = "cancelled"  # the client went away


class AttemptResult(StrEnum):
    """What became of one upstream attempt (stored as the attempt's ``outcome`` column)."""

    OK = "ok"
    FAILED = "failed"
    LOW_CONFIDENCE = "low_confidence"  # answered, below the cascade's threshold: escalated
    CANCELLED = "cancelled"  # lost a hedge race
    SKIPPED = "skipped"  # never sent (circuit open, context window too small)


# Answered attempts: their usage is real and priced.
ANSWERED = frozenset({AttemptResult.OK, AttemptResult.LOW_CONFIDENCE})


@dataclass(slots=True)
class Attempt:
    model: str
    provider: str
    model_id: str  # what we asked for
    tier: int
    started_ms: float  # since the request began
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    outcome: AttemptResult = (
        AttemptResult.OK
    )  # an AttemptResult; the stores' column keeps this name
    failure: str | None = None  # a FailureClass value
    status: int | None = None
    message: str | None = None
    retry_after_s: float | None = None
    reported_model: str | None = None  # what the provider said answered
    fingerprint: str | None = None
    usage: Usage | None = None
    cost_usd: float | None = None
    price_known: bool = True
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        # field by field rather than ``asdict``: it deep-copies every value, several times
        # the cost for the same result (the fields are plain values and the usage)
        data = {k: getattr(self, k) for k in _ATTEMPT_ORDER}
        data["usage"] = usage_dict(self.usage)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attempt:
        """The inverse of ``to_dict``. Unknown keys are ignored so that data written by a newer
        version (a spool, an export) still loads."""
        known = {k: v for k, v in data.items() if k in _ATTEMPT_FIELDS}
        known["usage"] = _usage(known.get("usage"))
        if "outcome" in known:
            known["outcome"] = _member(AttemptResult, known["outcome"])
        return cls(**known)


class DecisionView(Mapping[str, Any]):
    """A record's decision as the dictionary of ``Decision.to_dict()``, built when first
    read. The request path only keeps the ``Decision``: the dictionary (every candidate and
    rejection, with the rejections' messages rendered) is for whoever reads the record
    (a test, ``modelroute show``, an export, the spool); the stores encode the ``Decision``
    itself. It compares equal to the dictionary."""

    __slots__ = ("_data", "decision")

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self._data: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        if self._data is None:
            self._data = self.decision.to_dict()
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self.as_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.as_dict())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DecisionView):
            return self.decision == other.decision
        return self.as_dict() == other

    __hash__ = None  # type: ignore[assignment]  # a mapping, like the dict it stands for

    def __repr__(self) -> str:
        return repr(self.as_dict())


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    started_at: float  # unix seconds
    route: str | None = None
    task: str | None = None
    selected_by: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    policy_hash: str = ""
    policy_version: str | None = None
    client_key_id: str | None = None  # a hash, never the key
    endpoint: str = "chat.completions"
    streamed: bool = False
    # The planner's decision in the shape of ``Decision.to_dict()`` (a ``DecisionView`` on
    # the request path: built when read).
    decision: Mapping[str, Any] | None = None
    attempts: list[Attempt] = field(default_factory=list)
    final_model: str | None = None
    final_reported_model: str | None = None
    final_fingerprint: str | None = None
    confidence: float | None = None
    escalations: int = 0
    status: RequestStatus = RequestStatus.OK
    failure: str | None = None
    http_status: int = 200
    error: str | None = None
    usage: Usage | None = None
    cost_usd: float = 0.0
    price_unknown: bool = False
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    prompt: str | None = None
    answer: str | None = None
    # What the planner was given (features, limits, the statistics it read): replayable.
    planner_input: PlannerInput | None = None
    # The policy arm that served it while a canary runs ("baseline" or "canary"), else None.
    arm: str | None = None
    # The response cache (``modelroute.cache``): True answered from it (cost 0, no attempt),
    # False looked up and missed; None when the route has no cache or the request could not
    # be cached (it samples, asks for several choices, or said ``x-modelroute-cache: off``).
    cache_hit: bool | None = None
    # For a hit: what the cached answer cost when it was made (USD), saved this time.
    cache_saved_usd: float | None = None
    # A route with ``mode: semantic``: a hit on the answer to a paraphrase says how similar
    # (cosine, 0-1; None for an exact hit), and the time spent embedding the prompt, when it
    # was embedded (an exact hit is not).
    cache_similarity: float | None = None
    cache_embed_ms: float | None = None
    # The conversation it belongs to, on a route with session affinity (``Session.label``:
    # "header:conv-42", "user:<hash>", "fingerprint:<hash>"); what affinity did is on the
    # decision (``decision["affinity"]``).
    session: str | None = None
    # Held in memory only, never stored or serialised: the prompt text of a record that keeps
    # only its hash (or nothing), from which the store derives the template's task key.
    template_source: str | None = field(default=None, repr=False, compare=False)

    @property
    def attempt_count(self) -> int:
        return sum(1 for a in self.attempts if a.outcome != AttemptResult.SKIPPED)

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in RECORD_FIELDS}
        if isinstance(self.decision, DecisionView):
            data["decision"] = self.decision.as_dict()
        data["attempts"] = [a.to_dict() for a in self.attempts]
        data["usage"] = usage_dict(self.usage)
        if self.planner_input is not None:
            data["planner_input"] = self.planner_input.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestRecord:
        """The inverse of ``to_dict`` (``from_dict(r.to_dict()) == r``); unknown keys, such as
        the ``feedback`` a store joins in, are ignored."""
        known = {k: v for k, v in data.items() if k in _RECORD_FIELDS}
        known["attempts"] = [Attempt.from_dict(a) for a in known.get("attempts") or ()]
        known["usage"] = _usage(known.get("usage"))
        if known.get("planner_input") is not None:
            known["planner_input"] = PlannerInput.from_dict(known["planner_input"])
        if known.get("metadata") is None:
            known.pop("metadata", None)
        if "status" in known:
            known["status"] = _member(RequestStatus, known["status"])
        return cls(**known)


def _member(kind: type[StrEnum], value: Any) -> Any:
    """The enum member of a stored string; a value this version does not know (written by a
    newer one) is kept as the string it is, as unknown keys are ignored rather than refused."""
    try:
        return kind(value)
    except ValueError:
        return value


def _usage(raw: Any) -> Usage | None:
    if raw is None or isinstance(raw, Usage):
        return raw
    return Usage(**{k: v for k, v in raw.items() if k in _USAGE_FIELDS})


_USAGE_ORDER = tuple(f.name for f in fields(Usage))
_USAGE_FIELDS = frozenset(_USAGE_ORDER)


def usage_dict(usage: Usage | None) -> dict[str, int] | None:
    """``asdict(usage)`` without its deep copies (the counts are plain integers)."""
    return None if usage is None else {k: getattr(usage, k) for k in _USAGE_ORDER}


_ATTEMPT_ORDER = tuple(f.name for f in fields(Attempt))
_ATTEMPT_FIELDS = frozenset(_ATTEMPT_ORDER)
TRANSIENT_FIELDS = frozenset({"template_source"})
# The fields a record is stored, exported and serialised with, in declaration order.
RECORD_FIELDS = tuple(f.name for f in fields(RequestRecord) if f.name not in TRANSIENT_FIELDS)
_RECORD_FIELDS = frozenset(RECORD_FIELDS)


class RecordSink(Protocol):
    """Where finished records go. ``submit`` must not block the request path."""

    def submit(self, record: RequestRecord) -> None: ...


class MemorySink:
    """Keeps the most recent records in memory (the default when no store is configured).

    Kept records are long-lived objects that every full garbage collection walks: at 10,000 a
    gateway at full load paused 30-90 ms several times a second (p99 19-39 ms at concurrency
    16); at 1,000 the p99 was 2.4-2.7 ms. Keep more only with that cost in mind; a store keeps
    everything without it."""

    def __init__(self, capacity: int = 1_000) -> None:
        self.records: deque[RequestRecord] = deque(maxlen=capacity)

    def submit(self, record: RequestRecord) -> None:
        self.records.append(record)

    def find(self, request_id: str) -> RequestRecord | None:
        for record in reversed(self.records):
            if record.request_id == request_id:
                return record
        return None
