"""Request ids are RFC 9562 version 7 UUIDs whose text sorts by creation time."""

from __future__ import annotations

import time
import uuid

from modelroute.records.ids import new_request_id, uuid7


def test_request_ids_are_canonical_uuid7_text() -> None:
    ids = [new_request_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122


def test_request_ids_sort_by_creation_millisecond() -> None:
    first = new_request_id()
    time.sleep(0.002)
    second = new_request_id()
    assert first < second
    millis = int(second.replace("-", "")[:12], 16)
    assert abs(millis - time.time() * 1000) < 1000


def test_uuid7_takes_the_given_timestamp() -> None:
    value = uuid7(now_ms=1_700_000_000_123)
    assert int(value.hex[:12], 16) == 1_700_000_000_123 and value.version == 7
