"""One record, several sinks: the store's writer, metrics, traces.

``FanOut`` is itself a ``RecordSink``, so the router still hands each record to exactly one
sink. A sink that raises does not stop the others, nor reach the request path: the first
failure of each sink type is logged with its traceback, later ones are only counted.
"""

from __future__ import annotations

import logging

from modelroute.records.record import RecordSink, RequestRecord

log = logging.getLogger(__name__)


class FanOut:
    """Submits each record to every sink, in the order given."""

    def __init__(self, *sinks: RecordSink) -> None:
        self.sinks: tuple[RecordSink, ...] = sinks
        self.failures: dict[str, int] = {}  # sink type name -> failed submits

    def submit(self, record: RequestRecord) -> None:
        for sink in self.sinks:
            try:
                sink.submit(record)
            except Exception:
                self._failed(sink)

    def _failed(self, sink: RecordSink) -> None:
        name = type(sink).__qualname__
        seen = self.failures.get(name, 0)
        self.failures[name] = seen + 1
        if not seen:
            log.exception(
                "record sink %s failed; later failures of this sink type are counted, not logged",
                name,
            )
