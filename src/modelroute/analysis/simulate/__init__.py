"""Offline simulation of a policy on recorded per-prompt outcomes (``modelroute simulate``).

``table`` reads outcomes, ``splits`` picks the prompts, ``run`` sends each through the planner
and looks up what the chosen model recorded, ``metrics`` holds the definitions (frontier,
AIQ, APGR, CPT, oracle), ``report`` compares against the baselines with intervals, ``text``
renders it.
"""

from modelroute.analysis.simulate.run import Routed, Setup, SimulationError, simulate
from modelroute.analysis.simulate.table import (
    OutcomeDataError,
    OutcomeTable,
    from_outcomes,
    read_neutral,
)

__all__ = [
    "OutcomeDataError",
    "OutcomeTable",
    "Routed",
    "Setup",
    "SimulationError",
    "from_outcomes",
    "read_neutral",
    "simulate",
]
