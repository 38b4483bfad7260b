"""Measured statistics the planner reads: an immutable snapshot, built off the request path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class ModelStats:
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    error_rate: float | None = None
    quality: float | None = None
    samples: int = 0  # attempts behind the latency and error figures
    quality_samples: int = 0  # distinct rated requests (or outcomes) behind ``quality``
    # The interval around ``quality`` (measured outcomes; None for a plain mean), where the
    # figure came from ("eval", "eval+shadow", "feedback") and the provider-reported version
    # it was measured on.
    quality_low: float | None = None
    quality_high: float | None = None
    quality_sources: str | None = None
    quality_version: str | None = None


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """Rolling statistics per (route, model) and per model, plus the models whose circuit is open.

    A route-level figure wins over a model-wide one; the planner falls back to the policy's
    priors when neither exists.
    """

    by_route: Mapping[tuple[str, str], ModelStats] = field(
        default_factory=lambda: MappingProxyType({})
    )
    by_model: Mapping[str, ModelStats] = field(default_factory=lambda: MappingProxyType({}))
    open_circuits: frozenset[str] = frozenset()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatsSnapshot:
        """Read the JSON shape used by ``modelroute explain --stats``::

        {"models": {"gpt-4o": {"latency_p95_ms": 900, "error_rate": 0.01}},
         "routes": {"triage": {"gpt-4o": {"quality": 0.93, "quality_samples": 400,
                                          "quality_low": 0.90, "quality_high": 0.95,
                                          "quality_sources": "eval",
                                          "quality_version": "gpt-4o-2024-08-06"}}},
         "open_circuits": ["claude-haiku"]}

        A ``quality`` needs its ``quality_samples`` (distinct rated requests): the planner
        uses it only when they reach the policy's ``defaults.quality.min_samples``.
        """
        known = set(ModelStats.__dataclass_fields__)

        def one(where: str, raw: Any) -> ModelStats:
            if not isinstance(raw, Mapping):
                raise ValueError(f"{where}: expected an object of statistics")
            unknown = set(raw) - known
            if unknown:
                raise ValueError(
                    f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(known)}"
                )
            if raw.get("quality") is not None and "quality_samples" not in raw:
                raise ValueError(
                    f"{where}: 'quality' needs 'quality_samples' (how many distinct rated "
                    "requests it rests on)"
                )
            rated = raw.get("quality_samples", 0)
            if isinstance(rated, bool) or not isinstance(rated, int) or rated < 0:
                raise ValueError(f"{where}: 'quality_samples' must be a whole number >= 0")
            bounds = [raw.get(b) for b in ("quality_low", "quality_high")]
            if any(b is not None for b in bounds) and raw.get("quality") is None:
                raise ValueError(f"{where}: 'quality_low' and 'quality_high' need a 'quality'")
            return ModelStats(**raw)

        by_model = {m: one(f"models.{m}", s) for m, s in dict(data.get("models", {})).items()}
        by_route = {
            (r, m): one(f"routes.{r}.{m}", s)
            for r, per_model in dict(data.get("routes", {})).items()
            for m, s in dict(per_model).items()
        }
        unknown_top = set(data) - {"models", "routes", "open_circuits"}
        if unknown_top:
            raise ValueError(
                f"unknown top-level field(s) {sorted(unknown_top)}; "
                "known: models, routes, open_circuits"
            )
        return cls(
            MappingProxyType(by_route),
            MappingProxyType(by_model),
            frozenset(data.get("open_circuits", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        """The inverse of ``from_dict`` (``from_dict(s.to_dict()) == s``); figures left at
        their defaults are left out, and models and routes are sorted, so equal snapshots
        give equal dictionaries."""
        routes: dict[str, dict[str, dict[str, Any]]] = {}
        for (route, model), stats in sorted(self.by_route.items()):
            routes.setdefault(route, {})[model] = _figures(stats)
        return {
            "models": {m: _figures(s) for m, s in sorted(self.by_model.items())},
            "routes": routes,
            "open_circuits": sorted(self.open_circuits),
        }


_DEFAULTS = ModelStats()


def _figures(stats: ModelStats) -> dict[str, Any]:
    figures = {
        name: value
        for name in ModelStats.__dataclass_fields__
        if (value := getattr(stats, name)) != getattr(_DEFAULTS, name)
    }
    if stats.quality is not None:  # from_dict asks what a quality rests on, even when 0
        figures["quality_samples"] = stats.quality_samples
    return figures


EMPTY_STATS = StatsSnapshot()
