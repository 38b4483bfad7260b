"""Analysis of recorded traffic, off the request path: it reads records (and, later, outcomes)
and never imports the server. ``replay`` plans recorded requests again under a policy."""

from modelroute.analysis.replay import Replay
from modelroute.analysis.replay_text import render_replay

__all__ = ["Replay", "render_replay"]
