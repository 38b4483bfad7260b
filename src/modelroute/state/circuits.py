"""``CircuitState``: the port through which the engine and the planner see circuit breakers.

The engine asks ``allow`` before each call and reports its ``success`` or ``failure``; the
planner reads ``open_models`` (as ``circuit_open`` rejections); ``/readyz`` and the metrics
read ``snapshot``. ``Breakers`` (``state/breakers.py``) is the in-process implementation and
the default; one shared by several replicas (Redis) implements the same protocol.
"""

from __future__ import annotations

from typing import Protocol

from modelroute.failures import FailureClass


class CircuitState(Protocol):
    def allow(self, model: str, *, probe: bool = False, waited: bool = False) -> bool:
        """May a call to ``model`` go out now? A half-open circuit lets exactly one probe
        through: the caller that gets ``True`` holds it until it reports an outcome or
        releases it. ``probe``: the planner kept this open model as a route's last resort;
        ``waited``: a retry that waited out the provider's ``Retry-After``."""
        ...

    def why_not(self, model: str) -> str:
        """Why ``allow`` refused ``model``, for the record."""
        ...

    def release(self, model: str) -> None:
        """A call ``allow`` let through did not go out after all: free the probe it holds."""
        ...

    def success(self, model: str) -> None: ...

    def failure(
        self, model: str, cls: FailureClass | None = None, retry_after_s: float | None = None
    ) -> None:
        """A failed call, by its class (``None``: it ended without a verdict, e.g. a lost
        hedge race); ``retry_after_s``: the provider asked for a pause."""
        ...

    def open_models(self) -> frozenset[str]:
        """Models the planner must not offer now (cheap: called on every request)."""
        ...

    def state(self, model: str) -> str:
        """``closed``, ``open`` or ``half_open``."""
        ...

    def snapshot(self) -> dict[str, str]:
        """Every model with a breaker, by name, and its state."""
        ...
