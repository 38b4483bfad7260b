"""Executing a decision: attempts, retries, fallbacks, escalation, hedging, deadlines, and a
stream's relay after its first byte."""

from modelroute.engine.attempt import EngineDeps, OpenStream
from modelroute.engine.execute import Answer, Execution, Executor, route_of
from modelroute.engine.relay import Relay, StreamEnd, StreamFailed
from modelroute.engine.walk import AllAttemptsFailed

__all__ = [
    "AllAttemptsFailed",
    "Answer",
    "EngineDeps",
    "Execution",
    "Executor",
    "OpenStream",
    "Relay",
    "StreamEnd",
    "StreamFailed",
    "route_of",
]
