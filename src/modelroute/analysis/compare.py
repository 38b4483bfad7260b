"""The two arms of a canary side by side, from the records (``modelroute compare``).

Each arm (the ``arm`` records carry while a canary runs) gets its volume, and with a 95%
interval: mean cost and mean latency (seeded bootstrap), error rate (Wilson), and
measured quality from the feedback joined to its requests (``outcomes.intervals``), and the
canary's quality minus the baseline's (seeded bootstrap). Too few rated requests is said, not
guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from modelroute.outcomes.intervals import Interval, difference, estimate

ARMS = ("baseline", "canary")
MIN_RATED = 10  # fewer rated requests in an arm: "not enough evidence" for its quality
_CONFIDENCE = 0.95
_SEED = 20240718  # the same records always give the same intervals


def mean_interval(values: Sequence[float], confidence: float = _CONFIDENCE) -> Interval:
    """Mean with a seeded percentile bootstrap interval (any scale: dollars, milliseconds);
    values without spread get none (a bootstrap would claim certainty)."""
    n = len(values)
    if n == 0:
        return Interval(None, None, None, 0, confidence, "none")
    a = np.asarray(values, dtype=float)
    mean = float(a.mean())
    if n == 1 or float(a.min()) == float(a.max()):
        return Interval(mean, None, None, n, confidence, "none")
    result = stats.bootstrap(
        (a,), np.mean, confidence_level=confidence, n_resamples=2000, method="percentile",
        vectorized=True, rng=np.random.default_rng(_SEED),
    )  # fmt: skip
    low, high = result.confidence_interval
    return Interval(mean, float(low), float(high), n, confidence, "bootstrap")


@dataclass(frozen=True, slots=True)
class ArmSummary:
    arm: str
    policy_hashes: tuple[str, ...]
    requests: int
    cost: Interval
    latency_ms: Interval
    error_rate: Interval
    quality: Interval
    scores: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        def iv(i: Interval) -> dict[str, Any]:
            return {"mean": i.mean, "low": i.low, "high": i.high, "n": i.n}

        return {
            "arm": self.arm, "policy_hashes": list(self.policy_hashes),
            "requests": self.requests, "cost_usd": iv(self.cost),
            "latency_ms": iv(self.latency_ms), "error_rate": iv(self.error_rate),
            "quality": iv(self.quality) | {"enough": self.quality.n >= MIN_RATED},
        }  # fmt: skip


def summarise(records: Iterable[Mapping[str, Any]]) -> dict[str, ArmSummary]:
    """Arm -> summary, for the records a canary served (``arm`` set); others are skipped."""
    grouped: dict[str, list[Mapping[str, Any]]] = {arm: [] for arm in ARMS}
    for record in records:
        arm = record.get("arm")
        if arm in grouped:
            grouped[arm].append(record)
    return {arm: _arm(arm, rows) for arm, rows in grouped.items()}


def _arm(arm: str, rows: list[Mapping[str, Any]]) -> ArmSummary:
    scores = []
    for row in rows:
        rated = [f["score"] for f in row.get("feedback") or () if f.get("score") is not None]
        if rated:
            scores.append(float(rated[-1]))  # a later rating replaces an earlier one
    errors = [0.0 if row["status"] == "ok" else 1.0 for row in rows]
    return ArmSummary(
        arm,
        tuple(sorted({row["policy_hash"] for row in rows})),
        len(rows),
        mean_interval([float(row["cost_usd"] or 0.0) for row in rows]),
        mean_interval([float(row["latency_ms"] or 0.0) for row in rows]),
        estimate(errors),
        estimate(scores),
        tuple(scores),
    )


def quality_difference(arms: Mapping[str, ArmSummary]) -> Interval | None:
    """Canary minus baseline quality, or ``None`` while either arm has too few ratings."""
    base, canary = arms["baseline"], arms["canary"]
    if base.quality.n < MIN_RATED or canary.quality.n < MIN_RATED:
        return None
    return difference(list(base.scores), list(canary.scores))


def _fmt(i: Interval, unit: str = "", digits: int = 2, scale: float = 1.0) -> str:
    if i.mean is None:
        return "no data (n=0)"
    text = f"{unit}{i.mean * scale:.{digits}f}"
    if i.low is not None and i.high is not None:
        text += f" [{unit}{i.low * scale:.{digits}f}, {unit}{i.high * scale:.{digits}f}]"
    return text + f" (n={i.n})"


def render(arms: Mapping[str, ArmSummary], since_text: str) -> str:
    rows: list[tuple[str, Callable[[ArmSummary], str]]] = [
        ("policy", lambda a: ", ".join(h[:12] for h in a.policy_hashes) or "-"),
        ("requests", lambda a: str(a.requests)),
        ("cost / request", lambda a: _fmt(a.cost, "$", 6)),
        ("latency ms", lambda a: _fmt(a.latency_ms, "", 1)),
        ("error rate", lambda a: _fmt(a.error_rate, "", 1, 100.0).replace(" (", "% (", 1)),
        ("quality", _quality),
    ]
    lines = [f"canary vs baseline, records since {since_text} (95% intervals)", ""]
    lines.append(f"{'':<16}{'baseline':<44}canary")
    for label, cell in rows:
        lines.append(f"{label:<16}{cell(arms['baseline']):<44}{cell(arms['canary'])}")
    diff = quality_difference(arms)
    lines.append("")
    if diff is None:
        lines.append(
            f"quality difference: not enough evidence (each arm needs {MIN_RATED} rated requests)"
        )
    else:
        lines.append(
            f"quality difference (canary - baseline): {diff.mean:+.3f} "
            f"[{diff.low:+.3f}, {diff.high:+.3f}] (n={diff.n} per arm at least)"
        )
    return "\n".join(lines)


def _quality(a: ArmSummary) -> str:
    if a.quality.n < MIN_RATED:
        return f"not enough evidence (n={a.quality.n} rated)"
    return _fmt(a.quality)
