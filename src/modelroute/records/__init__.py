"""What happened to each request: the record, its attempts, and where records go."""

from modelroute.records.ids import uuid7
from modelroute.records.record import Attempt, MemorySink, RecordSink, RequestRecord

__all__ = ["Attempt", "MemorySink", "RecordSink", "RequestRecord", "uuid7"]
