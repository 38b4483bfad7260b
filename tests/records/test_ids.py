"""Request ids are RFC 9562 version 7 UUIDs whose text sorts by creation time."""

from __future__ import annotations

import time
import uuid

import pytest

from modelroute.records.ids import RequestIds, uuid7

SOURCES = [RequestIds(), RequestIds(block=40)]


@pytest.mark.parametrize("new_id", SOURCES, ids=["pooled", "small-pool"])
def test_request_ids_are_canonical_uuid7_text(new_id) -> None:  # type: ignore[no-untyped-def]
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122


@pytest.mark.parametrize("new_id", SOURCES, ids=["pooled", "small-pool"])
def test_request_ids_sort_by_creation_millisecond(new_id) -> None:  # type: ignore[no-untyped-def]
    first = new_id()
    time.sleep(0.002)
    second = new_id()
    assert first < second
    millis = int(second.replace("-", "")[:12], 16)
    assert abs(millis - time.time() * 1000) < 1000


def test_uuid7_takes_the_given_timestamp() -> None:
    value = uuid7(now_ms=1_700_000_000_123)
    assert int(value.hex[:12], 16) == 1_700_000_000_123 and value.version == 7


def test_pooled_ids_draw_fresh_random_bits_for_every_id() -> None:
    ids = RequestIds(block=30)  # three ids per draw from the operating system
    rand_parts = [i.replace("-", "")[13:] for i in (ids() for _ in range(300))]
    assert len(set(rand_parts)) == 300
