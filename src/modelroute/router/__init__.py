"""``Router``: the engine in-process, for library users and for the HTTP gateway alike.

One request: features → plan (pure) → execute → record. Every request yields exactly one
record, whatever happens to it, handed to the sink off the request path.

- ``core``: the ``Router`` class, its construction and the request path (``chat``, ``stream``);
- ``policies``: which policy serves a request (the current one or a canary beside it);
- ``admission``: the budgets and rate limits taken before a request runs;
- ``caching``: the response cache's lookup, hit and keep;
- ``client_view``: the answer cut to what the client asked for;
- ``feedback``: ratings joined to served requests;
- ``lifecycle``: what runs beside the requests, started and closed with the router;
- ``results``: ``ChatResult`` and ``ChatStream``;
- ``stats``: the statistics the planner reads (measured, plus the open circuits).
"""

from modelroute.router.core import Router
from modelroute.router.results import ChatResult, ChatStream
from modelroute.router.stats import StatsSource

__all__ = ["ChatResult", "ChatStream", "Router", "StatsSource"]
