"""Session affinity, the router's side: which conversation a request belongs to
(``keys.py``), and the pins that keep a conversation on its model (``pins.py`` in process,
``redis_pins.py`` shared). The decision itself is the planner's (``planner/affinity.py``)."""

from modelroute.sessions.keys import Session, session_of
from modelroute.sessions.pins import MemoryPins, PinStore

__all__ = ["MemoryPins", "PinStore", "Session", "open_pins", "session_of"]


def open_pins(url: str, prefix: str = "modelroute:") -> PinStore:
    """``memory`` (this process) or a ``redis://`` URL (``?prefix=`` honoured), as for
    ``serve --state``."""
    if url == "memory":
        return MemoryPins()
    from modelroute.sessions.redis_pins import RedisPins
    from modelroute.state.backends import split_prefix
    from modelroute.state.redis_state import connect

    url, prefix = split_prefix(url, prefix)
    return RedisPins(connect(url), prefix)
