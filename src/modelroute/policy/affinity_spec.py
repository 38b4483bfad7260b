"""A route's session affinity, as written in the policy.

``affinity: sticky`` (or ``none``, ``adaptive``), or the long form::

    affinity:
      mode: adaptive
      margin: 0.2        # adaptive: how much better the planner's first choice must be
      ttl: 30m           # a session's pin lapses after this long unused
      max_sessions: 100000   # pins kept for the route; the least recently used go first

``margin`` is in the route's objective: a fraction for ``min_cost`` and ``min_latency`` (0.2:
switch once the first choice is more than 20% cheaper or faster than the pinned model), and
quality points for ``max_quality`` (0.05: switch once it is 0.05 better).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
MAX_TTL_S = 30 * 86400.0


def seconds(value: Any) -> Any:
    """``90``, ``"90s"``, ``"30m"``, ``"2h"``, ``"1d"`` -> seconds; anything else is left for
    the field's own check to refuse."""
    if isinstance(value, str):
        found = _DURATION.match(value)
        if found is None:
            raise ValueError(f"{value!r} is not a duration: write e.g. 90s, 30m, 2h or 1d")
        return float(found.group(1)) * _UNITS[found.group(2) or "s"]
    return value


Duration = Annotated[float, BeforeValidator(seconds), Field(gt=0, le=MAX_TTL_S)]


class AffinityMode(StrEnum):
    NONE = "none"  # every turn planned afresh
    STICKY = "sticky"  # a session keeps its model while the model can serve it
    ADAPTIVE = "adaptive"  # ... unless the planner's first choice is better by the margin


DEFAULT_MARGIN = 0.2
DEFAULT_TTL_S = 3600.0
DEFAULT_MAX_SESSIONS = 100_000


class AffinitySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    mode: AffinityMode
    margin: Annotated[float, Field(ge=0, le=100)] = DEFAULT_MARGIN
    ttl: Duration = DEFAULT_TTL_S
    max_sessions: Annotated[int, Field(gt=0, le=100_000_000)] = DEFAULT_MAX_SESSIONS


AffinitySetting = AffinityMode | AffinitySpec
