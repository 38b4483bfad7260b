"""What the dashboard's pages show: plain, frozen values built by ``Dashboard`` (reader.py).

Pages render these and compute nothing from raw records. Times are unix seconds, money is
US dollars, latencies are milliseconds. A figure that cannot be known is ``None`` (never 0):
no traffic in a bucket has no p95, a model without outcomes has no quality. Quality always
comes with its sample size and interval; percentiles of latency come from the rollups'
fixed log-spaced histogram (``LATENCY_PRECISION`` says how close they are).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

# Percentiles read from the rollups' histogram: 8 buckets per decade, each reported at its
# geometric middle, so a p50/p95 shown is within this factor of the exact nearest-rank value
# (the top bucket holds everything from 100 s up, and reads as 100 s).
LATENCY_PRECISION = (
    "within ±16% (log histogram, 8 buckets per decade; 100 s and over shown as 100 s)"
)

SnapshotKind = Literal["audit", "drift"]
Served = Literal["first", "fallback", "escalated"]


# --- Overview --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Point:
    """One time bucket of one series (or the whole range, for a series' ``total``)."""

    at: float  # the bucket's start
    requests: int
    errors: int  # status other than ok
    fallbacks: int  # answered by a later model of the steps after a failure
    escalations: int  # answered by a later cascade tier after low confidence
    spend_usd: float
    p50_latency_ms: float | None  # None without requests
    p95_latency_ms: float | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def fallback_rate(self) -> float | None:
        return self.fallbacks / self.requests if self.requests else None


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a chart: every bucket of the range, in order, zero where nothing ran."""

    key: str | None  # the route or model; None for the total (and for requests without one)
    points: tuple[Point, ...]
    total: Point  # the whole range (its ``at`` is the range's start)


@dataclass(frozen=True, slots=True)
class SpendShare:
    route: str | None
    requests: int
    spend_usd: float
    share: float | None  # of the range's spend, in [0, 1]; None when nothing was spent


@dataclass(frozen=True, slots=True)
class Overview:
    since: float
    until: float
    step: int  # seconds per bucket: 60 or a multiple of it
    buckets: tuple[float, ...]  # each bucket's start, shared by every series' points
    total: Series
    by_route: tuple[Series, ...]  # by total requests, descending
    by_model: tuple[Series, ...]  # final model (None: no model answered)
    spend_share: tuple[SpendShare, ...]  # by spend, descending
    latency_precision: str = LATENCY_PRECISION


# --- Routes ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyCandidate:
    """One candidate of a route as the policy in force lists it, in planning order."""

    model: str
    provider: str
    tier: int
    fallback: bool
    prior_quality: float | None  # the policy's prior for this route
    input_usd_per_mtok: float | None
    output_usd_per_mtok: float | None


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    strategy: str
    objective: str
    max_latency_ms: float | None
    max_cost_usd: float | None
    min_quality: float | None
    on_infeasible: str
    candidates: tuple[PolicyCandidate, ...]
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelMix:
    """One final model of a route over the range."""

    model: str | None  # None: no model answered (rejected, infeasible, every attempt failed)
    requests: int
    share: float  # of the route's requests
    errors: int
    fallbacks: int
    spend_usd: float
    cost_per_request: float | None
    p50_latency_ms: float | None
    p95_latency_ms: float | None


@dataclass(frozen=True, slots=True)
class QualityFigure:
    """Measured quality of one model on one route, from stored outcomes (all time), with
    its interval; ``n`` below the route's ``min_samples`` means not enough evidence."""

    model: str
    version: str  # the provider-reported version it was measured on
    current: bool  # the version the planner reads
    mean: float | None
    low: float | None
    high: float | None
    n: int
    confidence: float
    method: str
    sources: tuple[str, ...]
    enough: bool  # n reaches the route's min_quality_samples (30 without a policy)
    last_at: float


@dataclass(frozen=True, slots=True)
class RejectionCount:
    """How many requests had ``candidate`` removed for ``reason`` (a request counts once per
    (candidate, reason))."""

    candidate: str
    reason: str
    requests: int
    share: float  # of the route's requests in the range


@dataclass(frozen=True, slots=True)
class RouteView:
    route: str | None
    requests: int
    errors: int
    fallbacks: int
    escalations: int
    spend_usd: float
    cost_per_request: float | None
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    policy: RoutePolicy | None  # None when no policy is known or it has no such route
    mix: tuple[ModelMix, ...]  # by requests, descending
    quality: tuple[QualityFigure, ...]  # by model, current version first
    rejections: tuple[RejectionCount, ...]  # by requests, descending


@dataclass(frozen=True, slots=True)
class Routes:
    since: float
    until: float
    policy_hash: str | None  # the policy the route views were read from
    routes: tuple[RouteView, ...]  # by requests, descending; policy routes without traffic last


# --- Decision explorer -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestRow:
    request_id: str
    started_at: float
    route: str | None
    final_model: str | None
    final_reported_model: str | None
    status: str
    latency_ms: float
    cost_usd: float
    served: Served | None  # how the answering model came to answer; None when none did
    policy_hash: str


@dataclass(frozen=True, slots=True)
class SearchPage:
    rows: tuple[RequestRow, ...]  # newest first
    # Pass as ``before`` for the next (older) page; None when this page is the last.
    next_before: str | None


@dataclass(frozen=True, slots=True)
class RejectionView:
    model: str
    reason: str
    value: float | None
    limit: float | None
    detail: str | None
    message: str


@dataclass(frozen=True, slots=True)
class CandidateView:
    """One candidate the planner kept, in the order it would be tried."""

    model: str
    tier: int
    fallback: bool
    chosen: bool  # the planner's first choice
    cost_usd: float
    latency_p95_ms: float
    latency_source: str
    quality: float | None
    quality_source: str
    quality_samples: int
    quality_low: float | None
    quality_high: float | None
    waived: tuple[RejectionView, ...]  # constraints it failed that were waived


@dataclass(frozen=True, slots=True)
class AttemptView:
    seq: int
    model: str
    provider: str
    model_id: str
    tier: int
    started_ms: float
    latency_ms: float
    ttft_ms: float | None
    outcome: str  # ok, failed, low_confidence, cancelled, skipped
    failure: str | None  # the FailureClass
    status: int | None
    message: str | None
    reported_model: str | None  # what the provider said answered
    fingerprint: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    confidence: float | None


@dataclass(frozen=True, slots=True)
class FeedbackView:
    score: float | None
    label: str | None
    source: str | None
    comment: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class OutcomeView:
    source: str
    grader: str
    score: float
    model: str
    version: str
    created_at: float
    run: str | None


@dataclass(frozen=True, slots=True)
class RequestDetail:
    request_id: str
    started_at: float
    route: str | None
    task: str | None
    selected_by: str | None
    endpoint: str
    streamed: bool
    status: str
    http_status: int
    failure: str | None
    error: str | None
    final_model: str | None
    final_reported_model: str | None
    final_fingerprint: str | None
    served: Served | None
    policy_hash: str
    policy_version: str | None
    latency_ms: float
    ttft_ms: float | None
    cost_usd: float
    input_tokens: int | None
    output_tokens: int | None
    confidence: float | None
    escalations: int
    strategy: str | None
    objective: str | None
    feasible: bool | None
    relaxed: str | None  # the on_infeasible action that produced the steps, if any
    limits: Mapping[str, float | None]  # max_cost_usd, max_latency_ms, min_quality applied
    candidates: tuple[CandidateView, ...]
    rejections: tuple[RejectionView, ...]
    notes: tuple[str, ...]
    attempts: tuple[AttemptView, ...]
    feedback: tuple[FeedbackView, ...]
    outcomes: tuple[OutcomeView, ...]
    metadata: Mapping[str, str]
    prompt: str | None
    answer: str | None
    record: Mapping[str, Any]  # the whole stored record, for a raw view
    session: str | None = None  # on a route with session affinity
    affinity: Mapping[str, Any] | None = None  # what affinity did: action, why, message


# --- Policy, audit, drift --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    hash: str
    version: str | None  # the policy's label
    first_seen: float | None  # first request recorded under it; None: stored, never served
    last_seen: float | None
    requests: int
    has_text: bool  # its text is stored (a diff is possible)
    in_force: bool  # the Dashboard's policy


@dataclass(frozen=True, slots=True)
class PolicyText:
    hash: str
    version: str | None
    source: str  # the file it was loaded from, as given
    text: str
    stored_at: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The latest stored result of a background analysis (never computed by a page)."""

    kind: SnapshotKind
    computed_at: float
    took_s: float  # how long computing it took
    headline: str  # one line for the page's top
    data: Mapping[str, Any]  # the analysis' ``to_dict()`` (AuditReport, drift Report)
    text: str  # the analysis' plain-text rendering
