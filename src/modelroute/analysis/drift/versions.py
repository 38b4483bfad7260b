"""Version changes: a model that answers as a version it had not answered as before.

A version is what the provider reported having run: the model name in its answer and its
``system_fingerprint``. For each model, every version seen in either window is placed by the
first request that saw it. A version first seen after another version of the same model (in
either window) is a change: an alert naming that first request. The condition holds while
both versions are inside the two windows, so a check that runs every few minutes announces
it once, soon after the change, and a check run for the first time still sees a change of
the last days. A model the policy pins (a dated or numbered id) that reports anything else
in the current window is an alert of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from modelroute.analysis.drift import queries
from modelroute.analysis.drift.findings import Finding
from modelroute.analysis.drift.settings import Windows
from modelroute.policy import Policy
from modelroute.records.stores.base import Store


@dataclass(slots=True)
class Seen:
    model: str
    reported: str | None
    fingerprint: str | None
    first_at: float
    last_at: float
    first_route: str | None  # the route of the first request that saw it
    n_current: int = 0
    n_baseline: int = 0

    def label(self) -> str:
        name = self.reported or "(no model reported)"
        return f"{name} ({self.fingerprint})" if self.fingerprint else name


def seen_versions(rows: Iterable[queries.GroupRow]) -> dict[str, list[Seen]]:
    """model -> its versions, oldest first (answered requests only)."""
    found: dict[tuple[str, str | None, str | None], Seen] = {}
    for r in rows:
        if r.model is None or (r.reported is None and r.fingerprint is None):
            continue
        key = (r.model, r.reported, r.fingerprint)
        seen = found.get(key)
        if seen is None:
            seen = found[key] = Seen(
                r.model, r.reported, r.fingerprint, r.first_at, r.last_at, r.route
            )
        elif r.first_at < seen.first_at:
            seen.first_at, seen.first_route = r.first_at, r.route
        seen.last_at = max(seen.last_at, r.last_at)
        seen.n_current += r.n_current
        seen.n_baseline += r.n_baseline
    by_model: dict[str, list[Seen]] = {}
    for seen in sorted(
        found.values(), key=lambda s: (s.first_at, s.reported or "", s.fingerprint or "")
    ):
        by_model.setdefault(seen.model, []).append(seen)
    return by_model


async def version_findings(
    store: Store, w: Windows, versions: dict[str, list[Seen]], policy: Policy | None
) -> list[Finding]:
    out: list[Finding] = []
    for model, seen in sorted(versions.items()):
        for i, new in enumerate(seen[1:], 1):
            before = max(seen[:i], key=lambda s: s.last_at)
            out.append(await _changed(store, new, before))
        if policy is not None and model in policy.models:
            spec = policy.models[model]
            if not spec.floating:
                out.extend(await _off_pin(store, w, spec.model_id, seen))
    return out


async def _changed(store: Store, new: Seen, before: Seen) -> Finding:
    request_id = await _first_request(store, new)
    return Finding(
        "version",
        {"model": new.model, "reported": new.reported, "fingerprint": new.fingerprint},
        f"model {new.model} answers as {new.label()} since {_time(new.first_at)} (first "
        f"request {request_id}); before: {before.label()}, last {_time(before.last_at)}",
        status="alert",
        n_current=new.n_current,
        n_baseline=new.n_baseline,
        evidence={
            "first_request": request_id,
            "first_seen_at": new.first_at,
            "requests": new.n_current + new.n_baseline,
            "previous": {
                "reported": before.reported,
                "fingerprint": before.fingerprint,
                "last_seen_at": before.last_at,
                "requests": before.n_current + before.n_baseline,
            },
        },
    )


async def _off_pin(store: Store, w: Windows, pinned: str, seen: Sequence[Seen]) -> list[Finding]:
    out = []
    reported: dict[str, Seen] = {}
    for s in seen:  # the first request of each reported name, fingerprints aside
        if (
            s.reported is not None
            and s.reported.lower() != pinned.lower()
            and s.last_at >= w.current_start
        ):
            reported.setdefault(s.reported, s)
    for name, s in reported.items():
        request_id = await _first_request(store, s)
        out.append(
            Finding(
                "pinned",
                {"model": s.model, "reported": name},
                f"model {s.model} is pinned to {pinned} but answers as {name} (first request "
                f"{request_id}, {_time(s.first_at)})",
                status="alert",
                n_current=s.n_current,
                n_baseline=s.n_baseline,
                evidence={
                    "pinned": pinned,
                    "first_request": request_id,
                    "first_seen_at": s.first_at,
                },
            )
        )
    return out


async def _first_request(store: Store, s: Seen) -> str | None:
    return await queries.first_request(
        store, s.first_route, s.model, s.reported, s.fingerprint, s.first_at
    )


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
