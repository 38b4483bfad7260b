"""The caller's identity on the request path: its key id is the record's, and a key kept off
a route is refused (403) with a record, before any provider is called."""

from __future__ import annotations

import pytest

from modelroute.errors import RouteNotAllowedError
from modelroute.identity import Budget, ClientIdentity, RateLimits, key_id_of
from modelroute.recording import client_key_id
from modelroute.records.record import MemorySink, RequestStatus
from modelroute.statuses import error_status
from modelroute.testing import Reply, Script, ScriptedProvider

from .support import body, make_router


def test_the_key_id_is_the_records_client_key_id() -> None:
    assert key_id_of("sk-some-key") == client_key_id("sk-some-key")
    assert len(key_id_of("sk-some-key")) == 16 and "sk-" not in key_id_of("sk-some-key")


def test_bad_limits_and_budgets_are_refused() -> None:
    with pytest.raises(ValueError, match="requests_per_minute"):
        RateLimits(requests_per_minute=0)
    with pytest.raises(ValueError, match="non-negative"):
        Budget(usd=float("nan"))
    with pytest.raises(ValueError, match="daily or monthly"):
        Budget(usd=1.0, period="weekly")  # type: ignore[arg-type]


async def test_an_identity_is_recorded_and_its_routes_are_enforced() -> None:
    provider = ScriptedProvider({"primary": Script([], then=Reply("hi"))})
    router = make_router(provider)
    caller = ClientIdentity(key_id="abcd" * 4, name="ci", routes=frozenset({"chat"}))
    result = await router.chat(body("chat"), {"authorization": "Bearer other"}, identity=caller)
    assert result.record.client_key_id == "abcd" * 4  # the identity wins over the header
    with pytest.raises(RouteNotAllowedError) as refused:
        await router.chat(body("everything"), identity=caller)
    record = refused.value.record
    assert record.status == RequestStatus.CLIENT_ERROR and record.http_status == 403
    assert error_status(refused.value) == 403 and record.route == "everything"
    assert len(provider.calls) == 1  # only the allowed request reached a provider
    assert isinstance(router.records, MemorySink) and len(router.records.records) == 2
