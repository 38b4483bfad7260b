"""Shadow comparisons: a sampled share of a route's live requests answered again, off the
request path, by cheaper models, each answer compared with the client's and kept as an
outcome (see ``sender.py``)."""

from modelroute.shadow.budget import DailyBudget, Reservation
from modelroute.shadow.metrics import ShadowMetrics
from modelroute.shadow.sender import (
    MemoryOutcomes,
    OutcomeSink,
    ShadowSender,
    ShadowSettings,
    shadowed,
)

__all__ = [
    "DailyBudget",
    "MemoryOutcomes",
    "OutcomeSink",
    "Reservation",
    "ShadowMetrics",
    "ShadowSender",
    "ShadowSettings",
    "shadowed",
]
