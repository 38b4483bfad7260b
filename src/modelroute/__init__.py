"""modelroute: send each LLM request to the model best suited to it, by a declared policy.

The library in one line: ``Router.from_file("policy.yaml")``, then ``await router.chat(body)``
(a :class:`ChatResult`) or ``await router.stream(body)`` (a :class:`ChatStream`). Errors are
the tree drawn in :mod:`modelroute.errors`; a request whose every attempt failed raises
:class:`AllAttemptsFailed`, a stream that failed after its first byte :class:`StreamFailed`.
"""

from modelroute.engine import StreamFailed
from modelroute.engine.walk import AllAttemptsFailed
from modelroute.errors import (
    InfeasibleError,
    ModelrouteError,
    PolicyError,
    RequestError,
    UnknownRouteError,
)
from modelroute.features import request_context
from modelroute.planner import Decision, RequestContext, StatsSnapshot, plan
from modelroute.policy import Model, Policy, load_policy, load_policy_dict, load_policy_text
from modelroute.providers.base import Provider
from modelroute.records.record import RequestRecord
from modelroute.router import ChatResult, ChatStream, Router
from modelroute.state.circuits import CircuitState
from modelroute.types import Completion, StreamChunk, UpstreamError, Usage

__version__ = "0.1.0"

__all__ = [
    "AllAttemptsFailed",
    "ChatResult",
    "ChatStream",
    "CircuitState",
    "Completion",
    "Decision",
    "InfeasibleError",
    "Model",
    "ModelrouteError",
    "Policy",
    "PolicyError",
    "Provider",
    "RequestContext",
    "RequestError",
    "RequestRecord",
    "Router",
    "StatsSnapshot",
    "StreamChunk",
    "StreamFailed",
    "UnknownRouteError",
    "UpstreamError",
    "Usage",
    "__version__",
    "load_policy",
    "load_policy_dict",
    "load_policy_text",
    "plan",
    "request_context",
]
