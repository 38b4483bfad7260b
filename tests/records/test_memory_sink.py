"""The in-memory sink: a bounded window of the latest records, found by id."""

from __future__ import annotations

from modelroute.records.record import MemorySink

from .conftest import realistic


def test_keeps_the_latest_thousand_by_default() -> None:
    sink = MemorySink()
    records = [realistic(i) for i in range(1_200)]
    for record in records:
        sink.submit(record)
    assert list(sink.records) == records[200:]
    assert sink.find(records[-1].request_id) is records[-1]
    assert sink.find(records[200].request_id) is records[200]
    assert sink.find(records[199].request_id) is None  # fell out of the window


def test_capacity_can_be_raised() -> None:
    sink = MemorySink(capacity=5_000)
    for i in range(1_200):
        sink.submit(realistic(i))
    assert len(sink.records) == 1_200
