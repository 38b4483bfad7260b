"""A Responses API request the Chat Completions bridge cannot carry is planned with that need
(``needs_responses``): it comes back from both stores, and replays to the same decision.
Records stored before the flag existed read as without it."""

from __future__ import annotations

from modelroute.planner import RequestContext, plan
from modelroute.planner.decision import Reason
from modelroute.records.record import RequestRecord
from modelroute.records.stores.base import Store
from modelroute.records.stores.body import FEATURE_FIELDS, planner_input_from

from .test_planner_input import SNAPSHOT, planned, policy


async def test_the_need_comes_back_and_replays(store: Store) -> None:
    p = policy()
    needing = planned(p, RequestContext("other", prompt_tokens=9, needs_responses=True), 0)
    plain = planned(p, RequestContext("other", prompt_tokens=9), 1)
    assert needing.decision is not None and not needing.decision["tiers"]
    rejection = needing.decision["rejections"][0]
    assert (rejection["reason"], rejection["detail"]) == (Reason.MISSING_CAPABILITY, "responses")
    assert plain.decision is not None and plain.decision["tiers"]
    await store.write([needing, plain])
    for r in (needing, plain):
        got = await store.get(r.request_id)
        assert got is not None
        back = RequestRecord.from_dict(got)
        assert back.planner_input is not None and r.planner_input is not None
        assert back.planner_input.context.needs_responses == r.planner_input.context.needs_responses
        again = plan(back.planner_input.context, p, back.planner_input.stats)
        assert again.to_dict() == got["decision"]


def test_features_stored_before_the_flag_read_without_it() -> None:
    old = ["other", 9, None, False, False, False, False, None, None, None, None]
    assert len(old) == len(FEATURE_FIELDS)
    restored = planner_input_from(old, None, {}, SNAPSHOT)
    assert restored.context.needs_responses is False
    flagged = [*old[:-1], True, old[-1]]  # as a request that needed it is stored
    assert planner_input_from(flagged, None, {}, SNAPSHOT).context.needs_responses
