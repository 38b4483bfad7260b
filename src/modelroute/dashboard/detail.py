"""One stored request as the explorer shows it: the record's dictionary (``Store.get``) and
its outcomes, as ``RequestDetail``. Records written by older versions, imported, or made by
hand may lack parts of the decision: what is missing is shown as missing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from modelroute.dashboard.views import (
    AttemptView,
    CandidateView,
    FeedbackView,
    OutcomeView,
    RejectionView,
    RequestDetail,
    Served,
)

OUTCOME_COLUMNS = "source, grader, score, model, COALESCE(reported_model, model), created_at, run"


def served(final_model: str | None, chosen: Any, escalations: int) -> Served | None:
    """How the answering model came to answer (as ``derived.decision_reason`` says it)."""
    if final_model is None:
        return None
    if chosen is None or final_model == chosen:
        return "first"
    return "escalated" if escalations else "fallback"


def _float(x: Any) -> float | None:
    return None if x is None else float(x)


def rejection(r: Mapping[str, Any]) -> RejectionView:
    return RejectionView(
        model=str(r.get("model")),
        reason=str(r.get("reason")),
        value=_float(r.get("value")),
        limit=_float(r.get("limit")),
        detail=r.get("detail"),
        message=str(r.get("message") or r.get("reason")),
    )


def _candidates(decision: Mapping[str, Any]) -> tuple[CandidateView, ...]:
    chosen = decision.get("chosen")
    out = []
    for tier, candidates in enumerate(decision.get("tiers") or ()):
        for c in candidates:
            out.append(
                CandidateView(
                    model=str(c.get("model")),
                    tier=tier,
                    fallback=bool(c.get("fallback")),
                    chosen=c.get("model") == chosen,
                    cost_usd=float(c.get("cost_usd") or 0.0),
                    latency_p95_ms=float(c.get("latency_p95_ms") or 0.0),
                    latency_source=str(c.get("latency_source")),
                    quality=_float(c.get("quality")),
                    quality_source=str(c.get("quality_source")),
                    quality_samples=int(c.get("quality_samples") or 0),
                    quality_low=_float(c.get("quality_low")),
                    quality_high=_float(c.get("quality_high")),
                    waived=tuple(rejection(w) for w in c.get("waived") or ()),
                )
            )
    return tuple(out)


def _attempt(seq: int, a: Mapping[str, Any]) -> AttemptView:
    usage = a.get("usage") or {}
    return AttemptView(
        seq=seq,
        model=a["model"],
        provider=a["provider"],
        model_id=a["model_id"],
        tier=int(a["tier"]),
        started_ms=float(a["started_ms"]),
        latency_ms=float(a["latency_ms"]),
        ttft_ms=_float(a.get("ttft_ms")),
        outcome=str(a.get("outcome")),
        failure=a.get("failure"),
        status=a.get("status"),
        message=a.get("message"),
        reported_model=a.get("reported_model"),
        fingerprint=a.get("fingerprint"),
        input_tokens=usage.get("input_tokens"),
        output_tokens=usage.get("output_tokens"),
        cost_usd=_float(a.get("cost_usd")),
        confidence=_float(a.get("confidence")),
    )


def detail(record: dict[str, Any], outcomes: Sequence[Sequence[Any]]) -> RequestDetail:
    """``record``: ``Store.get``'s dictionary; ``outcomes``: rows of ``OUTCOME_COLUMNS``."""
    decision: Mapping[str, Any] = record.get("decision") or {}
    limits = decision.get("limits")
    usage = record.get("usage") or {}
    return RequestDetail(
        request_id=record["request_id"],
        started_at=float(record["started_at"]),
        route=record.get("route"),
        task=record.get("task"),
        selected_by=record.get("selected_by"),
        endpoint=str(record.get("endpoint")),
        streamed=bool(record.get("streamed")),
        status=str(record["status"]),
        http_status=int(record.get("http_status") or 0),
        failure=record.get("failure"),
        error=record.get("error"),
        final_model=record.get("final_model"),
        final_reported_model=record.get("final_reported_model"),
        final_fingerprint=record.get("final_fingerprint"),
        served=served(
            record.get("final_model"), decision.get("chosen"), record.get("escalations") or 0
        ),
        policy_hash=str(record.get("policy_hash") or ""),
        policy_version=record.get("policy_version"),
        latency_ms=float(record["latency_ms"]),
        ttft_ms=_float(record.get("ttft_ms")),
        cost_usd=float(record["cost_usd"]),
        input_tokens=usage.get("input_tokens"),
        output_tokens=usage.get("output_tokens"),
        confidence=_float(record.get("confidence")),
        escalations=int(record.get("escalations") or 0),
        strategy=decision.get("strategy"),
        objective=decision.get("objective"),
        feasible=decision.get("feasible"),
        relaxed=decision.get("relaxed"),
        limits=dict(cast(Mapping[str, Any], limits)) if isinstance(limits, Mapping) else {},
        candidates=_candidates(decision),
        rejections=tuple(
            rejection(r) for r in decision.get("rejections") or () if isinstance(r, Mapping)
        ),
        notes=tuple(str(n) for n in decision.get("notes") or ()),
        attempts=tuple(_attempt(i, a) for i, a in enumerate(record.get("attempts") or ())),
        feedback=tuple(
            FeedbackView(
                f.get("score"),
                f.get("label"),
                f.get("source"),
                f.get("comment"),
                float(f["created_at"]),
            )
            for f in record.get("feedback") or ()
        ),
        outcomes=tuple(
            OutcomeView(str(s), str(g), float(score), str(m), str(v), float(at), run)
            for s, g, score, m, v, at, run in outcomes
        ),
        metadata=dict(record.get("metadata") or {}),
        prompt=record.get("prompt"),
        answer=record.get("answer"),
        record=record,
        session=record.get("session"),
        affinity=decision.get("affinity")
        if isinstance(decision.get("affinity"), Mapping)
        else None,
    )
