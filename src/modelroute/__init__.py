"""modelroute: send each LLM request to the model best suited to it, by a declared policy."""

from modelroute.errors import (
    InfeasibleError,
    ModelrouteError,
    PolicyError,
    RequestError,
    UnknownRouteError,
)
from modelroute.features import request_context
from modelroute.planner import Decision, RequestContext, StatsSnapshot, plan
from modelroute.policy import Policy, load_policy, load_policy_dict, load_policy_text

__version__ = "0.1.0"

__all__ = [
    "Decision",
    "InfeasibleError",
    "ModelrouteError",
    "Policy",
    "PolicyError",
    "RequestContext",
    "RequestError",
    "StatsSnapshot",
    "UnknownRouteError",
    "__version__",
    "load_policy",
    "load_policy_dict",
    "load_policy_text",
    "plan",
    "request_context",
]
