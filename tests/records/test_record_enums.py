"""A record's status and an attempt's result are enums that are also the strings the stores
keep: a record read back (from a store, a spool, an export) has the members again, and a
value written by a newer version still loads."""

from __future__ import annotations

import orjson

from modelroute.records.record import Attempt, AttemptResult, RequestRecord, RequestStatus


def _record() -> RequestRecord:
    attempt = Attempt("m", "openai", "m-v1", 0, 0.0, outcome=AttemptResult.SKIPPED)
    return RequestRecord("r1", 0.0, status=RequestStatus.STREAM_ERROR, attempts=[attempt])


def test_the_strings_written_are_the_same() -> None:
    written = orjson.loads(orjson.dumps(_record().to_dict()))
    assert written["status"] == "stream_error" and type(written["status"]) is str
    assert written["attempts"][0]["outcome"] == "skipped"


def test_a_record_read_back_has_the_members() -> None:
    back = RequestRecord.from_dict(orjson.loads(orjson.dumps(_record().to_dict())))
    assert back.status is RequestStatus.STREAM_ERROR
    assert back.attempts[0].outcome is AttemptResult.SKIPPED
    assert back == _record()


def test_a_value_this_version_does_not_know_still_loads() -> None:
    data = {**_record().to_dict(), "status": "a_newer_status"}
    assert RequestRecord.from_dict(data).status == "a_newer_status"
