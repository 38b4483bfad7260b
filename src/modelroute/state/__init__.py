"""The shared state of routing: circuit breakers (the ``CircuitState`` port and its
in-process implementation), rolling statistics, and later limits and budgets."""

from modelroute.state.breakers import Breakers
from modelroute.state.circuits import CircuitState

__all__ = ["Breakers", "CircuitState"]
