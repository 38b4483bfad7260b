"""The planner's whole input for one request, kept on its record so that the decision can be
replayed: ``plan(input.context, policy, input.stats)`` gives the recorded decision again.

On the request path a record holds references only: the ``RequestContext`` the router built,
the ``StatsSnapshot`` it gave ``plan`` and the ``Decision`` that came out. Narrowing the
snapshot to what the planner read (each candidate's figures and circuit) and encoding happen
later, in whichever sink serialises the record (the store's writer thread).

The dictionary form (``to_dict``; what ``Store.get``, exports and the spool carry)::

    {"requested": "support", "task": "triage", "metadata": {"tier": "gold"},
     "prompt_tokens": 412, "max_output_tokens": 256, "has_tools": false,
     "has_images": false, "needs_json": true, "needs_logprobs": false,
     "limits": {"max_cost_usd": 0.01, "max_latency_ms": null, "min_quality": null},
     "stats": {"models": {...}, "routes": {...}, "open_circuits": [...]}}

``stats`` has the shape ``modelroute explain --stats`` reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from modelroute.planner import EMPTY_STATS, Decision, RequestContext, StatsSnapshot
from modelroute.planner.context import NO_LIMITS, Limits
from modelroute.planner.plan import consulted_stats

FLAGS = ("has_tools", "has_images", "needs_json", "needs_logprobs")


class PlannerInput:
    """What ``plan`` was given for one request, narrowed (lazily) to what it read."""

    __slots__ = ("_consulted", "context", "decision", "snapshot")

    def __init__(
        self,
        context: RequestContext,
        snapshot: StatsSnapshot,
        decision: Decision | None = None,
    ) -> None:
        """``snapshot``: the whole snapshot ``plan`` was given; ``decision``: what it decided
        (None when no route was found: then no statistics were read)."""
        self.context = context
        self.decision = decision
        self.snapshot = snapshot  # as given (for a stored input, the part that was read)
        self._consulted: StatsSnapshot | None = None

    @classmethod
    def narrowed(cls, context: RequestContext, stats: StatsSnapshot) -> PlannerInput:
        """An input whose statistics are already those the planner read (as stored)."""
        made = cls(context, stats)
        made._consulted = stats
        return made

    @property
    def stats(self) -> StatsSnapshot:
        """The statistics the planner read: enough to plan this request again."""
        if self._consulted is None:
            if self.decision is None:
                self._consulted = EMPTY_STATS
            else:
                self._consulted = consulted_stats(self.decision, self.snapshot)
        return self._consulted

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PlannerInput):
            return NotImplemented
        return self.context == other.context and self.stats == other.stats

    def __hash__(self) -> int:  # pragma: no cover - records are not hashed
        raise TypeError("PlannerInput is not hashable")

    def __repr__(self) -> str:
        return f"PlannerInput({self.context!r}, {self.stats!r})"

    def to_dict(self) -> dict[str, Any]:
        ctx = self.context
        data = features_dict(ctx)
        data["stats"] = self.stats.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlannerInput:
        """The inverse of ``to_dict``."""
        return cls.narrowed(
            context_from(data, data.get("task"), data.get("metadata") or {}),
            StatsSnapshot.from_dict(data.get("stats") or {}),
        )


def features_dict(ctx: RequestContext) -> dict[str, Any]:
    """The request features of the dictionary form (everything but ``stats``)."""
    return {
        "requested": ctx.requested,
        "task": ctx.task,
        "metadata": dict(ctx.metadata),
        "prompt_tokens": ctx.prompt_tokens,
        "max_output_tokens": ctx.max_output_tokens,
        "has_tools": ctx.has_tools,
        "has_images": ctx.has_images,
        "needs_json": ctx.needs_json,
        "needs_logprobs": ctx.needs_logprobs,
        "limits": ctx.limits._asdict(),
        "needs_responses": ctx.needs_responses,
        **({"pin": ctx.pin} if ctx.pin is not None else {}),
    }


def context_from(
    features: Mapping[str, Any], task: str | None, metadata: Mapping[str, str]
) -> RequestContext:
    """A ``RequestContext`` from the features of the dictionary form; ``task`` and ``metadata``
    come from the record, which keeps them anyway."""
    raw = features.get("limits") or {}
    limits = Limits(**{k: raw.get(k) for k in Limits._fields})
    return RequestContext(
        requested=features.get("requested"),
        task=task,
        metadata=MappingProxyType({str(k): str(v) for k, v in metadata.items()}),
        prompt_tokens=int(features.get("prompt_tokens") or 0),
        max_output_tokens=features.get("max_output_tokens"),
        has_tools=bool(features.get("has_tools")),
        has_images=bool(features.get("has_images")),
        needs_json=bool(features.get("needs_json")),
        needs_logprobs=bool(features.get("needs_logprobs")),
        limits=NO_LIMITS if limits == NO_LIMITS else limits,
        needs_responses=bool(features.get("needs_responses")),
        pin=features.get("pin"),
    )
