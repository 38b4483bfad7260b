"""Hand each record to several sinks (store writer, metrics, rolling stats, traces)."""

from __future__ import annotations

import logging

from modelroute.records.record import RecordSink, RequestRecord

log = logging.getLogger("modelroute.records")


class FanOut:
    """A ``RecordSink`` that submits to each of its sinks; one failing never stops the rest."""

    def __init__(self, *sinks: RecordSink) -> None:
        self.sinks = sinks
        self._reported: set[type] = set()

    def submit(self, record: RequestRecord) -> None:
        for sink in self.sinks:
            try:
                sink.submit(record)
            except Exception:  # a sink's bug must not cost the others their record
                if type(sink) not in self._reported:
                    self._reported.add(type(sink))
                    log.exception("record sink %s failed", type(sink).__name__)
