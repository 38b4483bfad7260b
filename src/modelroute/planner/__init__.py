"""Pure planning: a request, a policy and a stats snapshot in; a ``Decision`` out."""

from modelroute.planner.context import Limits, RequestContext
from modelroute.planner.decision import Candidate, Decision, Estimate, Reason, Rejection
from modelroute.planner.plan import consulted_stats, plan
from modelroute.planner.select import select_route
from modelroute.planner.stats import EMPTY_STATS, ModelStats, StatsSnapshot

__all__ = [
    "EMPTY_STATS",
    "Candidate",
    "Decision",
    "Estimate",
    "Limits",
    "ModelStats",
    "Reason",
    "Rejection",
    "RequestContext",
    "StatsSnapshot",
    "consulted_stats",
    "plan",
    "select_route",
]
