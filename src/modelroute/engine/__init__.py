"""Executing a decision: attempts, retries, fallbacks, escalation, hedging, deadlines."""

from modelroute.engine.attempt import EngineDeps, OpenStream
from modelroute.engine.execute import Answer, Executor, route_of
from modelroute.engine.walk import AllAttemptsFailed

__all__ = ["AllAttemptsFailed", "Answer", "EngineDeps", "Executor", "OpenStream", "route_of"]
