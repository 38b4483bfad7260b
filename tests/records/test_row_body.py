"""The body ``RowEncoder`` writes: named tuples as arrays, and any other value orjson cannot
write still stored the way ``list()`` turns it into an array."""

from __future__ import annotations

import orjson

from modelroute.features import request_context
from modelroute.planner import StatsSnapshot, plan
from modelroute.policy import load_policy_dict
from modelroute.recording import RecordBuilder
from modelroute.records.stores.body import BODY_FIELDS, REQUEST_COLUMNS, RowEncoder, body

from ..policies import model
from .samples import SAMPLES


def _body(row: tuple[object, ...]) -> dict[str, object]:
    return body({"body": row[REQUEST_COLUMNS.index("body")]})


def test_a_value_that_is_not_a_named_tuple_is_written_as_list_makes_it() -> None:
    record = SAMPLES["success"]()
    record.metadata = {"tags": frozenset({"a"})}  # type: ignore[dict-item]
    record.answer = range(3)  # type: ignore[assignment]
    stored = _body(RowEncoder().row(record, {}))
    assert stored["metadata"] == {"tags": ["a"]}
    assert stored["answer"] == [0, 1, 2]


def test_named_tuples_are_written_as_the_arrays_of_their_items() -> None:
    policy = load_policy_dict(
        {
            "models": {"a": model(out=1), "b": model(out=2), "c": model(out=500)},
            "routes": {
                "x": {
                    "constraints": {"max_cost_usd": 0.001},
                    "strategy": {"kind": "cheapest_qualified", "models": ["a", "b", "c"]},
                }
            },
        }
    )
    request = {"model": "x", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 9}
    builder = RecordBuilder(policy, "chat.completions", False, lambda: 0.0, "off", str)
    ctx = request_context(request)
    builder.context(ctx, request, StatsSnapshot())
    decision = plan(ctx, policy)
    builder.decided(decision)
    assert decision.rejections and len(decision.tiers[0]) == 2
    stored = _body(RowEncoder().row(builder.record, {}))
    # As orjson writes the decision's named tuples given list() for them, item for item.
    assert stored["decision"] == orjson.loads(orjson.dumps(decision, default=list))
    assert len(BODY_FIELDS) == len(stored)
