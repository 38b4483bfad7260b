"""The task key: the label when the request carries one, else the fingerprint of its prompt's
template, stored in a column when the record is written, and derived for rows stored before
(migration 7), in SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from modelroute.policy import Policy, load_policy_dict
from modelroute.recording import RecordBuilder
from modelroute.records.derived import decision_reason
from modelroute.records.record import RequestRecord
from modelroute.records.stores import schema
from modelroute.records.stores.body import REQUEST_COLUMNS, V5_COLUMNS, RowEncoder
from modelroute.records.stores.postgres import migrate
from modelroute.records.task_key import mask, task_key, template, template_key

from ..policies import model
from .conftest import make_store, realistic

SYSTEM = "system: You are a support triage assistant. Answer with one label."


def triage(ticket: str, email: str, day: str, text: str) -> str:
    return f'{SYSTEM}\nuser: Ticket #{ticket} from {email} on {day}: "{text}"'


def test_values_are_masked() -> None:
    text = (
        "Invoice INV-2024-00123 of 1,234.50 EUR, due 2024-05-01 12:30, from ana@example.com "
        "(see https://pay.example/i/9 or www.example.org); id 550e8400-e29b-41d4-a716-"
        "446655440000 says \"it's late\" and 'why', it's fine"
    )
    assert mask(text) == (
        "Invoice <n> of <n> EUR, due <n> <n>, from <email> (see <url> or <url>); id "
        "<n> says <q> and <q>, it's fine"
    )


def test_one_template_one_key_whatever_the_values() -> None:
    a = triage("4821", "ana@example.com", "2024-05-01", "I was charged twice")
    b = triage("17", "bo.kim@mail.example.org", "2025-12-31", "The dashboard is down")
    assert template_key(a) == template_key(b) is not None
    assert template(a) == f"{SYSTEM}\nuser: Ticket #<n> from <email> on <n>: <q>"
    assert str(template_key(a)).startswith("tpl:")


def test_templates_differ() -> None:
    base = triage("1", "a@b.co", "2024-01-01", "x")
    other_system = base.replace("one label", "two labels")
    other_user = f"{SYSTEM}\nuser: Refund order ORD-1 for a@b.co?"
    keys = {template_key(p) for p in (base, other_system, other_user)}
    assert len(keys) == 3


def test_the_payload_after_a_blank_line_and_later_turns_are_left_out() -> None:
    head = "system: Summarise the call.\nuser: Call 12 on 2024-01-02:\n\n"
    one = head + "The customer asked about renewal.\nassistant: ok\nuser: more"
    two = head + "Totally different words here."
    assert template_key(one) == template_key(two)


def test_the_label_wins_and_no_text_is_no_key() -> None:
    prompt = triage("1", "a@b.co", "2024-01-01", "x")
    assert task_key("ticket-triage", prompt) == "ticket-triage"
    assert task_key(None, prompt) == template_key(prompt)
    assert task_key(None, None) is None
    assert task_key(None, "sha256:" + "0" * 64) is None  # only the prompt's hash was kept


def test_a_prompt_without_roles_is_a_user_message() -> None:
    assert template("Translate 12 words") == "user: Translate <n> words"


def test_decision_reason_names_the_route_rule_and_rejections() -> None:
    decision = {
        "selected_by": "task", "strategy": "cheapest_qualified", "objective": "min_cost",
        "relaxed": None, "chosen": "small", "limits": {"min_quality": 0.8},
        "rejections": [
            {"model": "tiny", "reason": "below_min_quality"},
            {"model": "tiny", "reason": "below_min_quality"},
            {"model": "big", "reason": "over_cost_ceiling"},
        ],
    }  # fmt: skip
    reason = orjson.loads(str(decision_reason(decision, "small", 0)))
    assert reason == [
        "task", "cheapest_qualified", "min_cost", None, 0.8,
        [["big", "over_cost_ceiling"], ["tiny", "below_min_quality"]], "first",
    ]  # fmt: skip
    assert orjson.loads(str(decision_reason(decision, "big", 1)))[-1] == "escalated"
    assert orjson.loads(str(decision_reason(decision, "big", 0)))[-1] == "fallback"
    assert decision_reason(None, None, 0) is None


def _policy() -> Policy:
    return load_policy_dict(
        {
            "models": {"m": model()},
            "routes": {"x": {"strategy": {"kind": "fixed", "models": ["m"]}}},
        }
    )


def _builder(content: str) -> RecordBuilder:
    return RecordBuilder(_policy(), "chat.completions", False, time.monotonic, content, str)


@pytest.mark.parametrize("content", ["truncated", "hash", "off"])
def test_the_key_survives_a_prompt_kept_only_as_a_hash(content: str) -> None:
    from modelroute.features import request_context
    from modelroute.planner import StatsSnapshot

    body = {"model": "x", "messages": [{"role": "user", "content": "Refund order 123 now"}]}
    builder = _builder(content)
    builder.context(request_context(body), body, StatsSnapshot())
    record = builder.record
    row = RowEncoder().row(record, {})
    key = row[REQUEST_COLUMNS.index("task_key")]
    assert key == template_key("user: Refund order 123 now")
    assert "template_source" not in record.to_dict()  # never stored nor spooled
    assert "Refund" not in row[REQUEST_COLUMNS.index("body")] or content == "truncated"


async def test_written_rows_carry_the_derived_columns(store_target: Path | str) -> None:
    store = make_store(store_target)
    await store.open()
    record = realistic(1)
    record.task = None
    record.prompt = triage("9", "x@y.io", "2024-02-02", "help")
    try:
        await store.write([record])
        got = await store.get(record.request_id)
        assert got is not None and "task_key" not in got  # a column, not a record field
        assert RequestRecord.from_dict(got) == record
        assert await store.get_many([record.request_id, "no-such-id"]) == [got]
    finally:
        await store.close()
    row = await _derived_row(store_target, record.request_id)
    assert row[0] == template_key(record.prompt)
    assert orjson.loads(row[1])[5] == [["large", "cost_ceiling"]]
    assert row[2:] == (1201, 180, 1024, 0)


# --- a version-6 store derives the columns of the rows it holds -----------------------------

V6 = 6


def _v6_rows(records: list[RequestRecord]) -> tuple[list[tuple[Any, ...]], dict[str, str]]:
    stats: dict[str, str] = {}
    encoder = RowEncoder()
    kept = [REQUEST_COLUMNS.index(c) for c in V5_COLUMNS]
    return [tuple(encoder.row(r, stats)[i] for i in kept) for r in records], stats


async def _make_v6(target: Path | str, records: list[RequestRecord]) -> None:
    rows, stats = _v6_rows(records)
    columns = ", ".join(V5_COLUMNS)
    if isinstance(target, Path):
        conn = sqlite3.connect(target, isolation_level=None)
        conn.execute(schema.render(schema.BOOTSTRAP, "sqlite"))
        for version, statements in schema.pending(0, "sqlite", target=V6):
            for statement in statements:
                if statement != schema.FOLD:  # nothing to fold in an empty database
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
        marks = ", ".join("?" * len(V5_COLUMNS))
        conn.executemany(f"INSERT INTO requests ({columns}) VALUES ({marks})", rows)
        conn.executemany("INSERT INTO planner_stats VALUES (?, ?)", stats.items())
        conn.close()
        return
    pg = await asyncpg.connect(target)
    try:
        assert await migrate(pg, target=V6) == V6
        marks = ", ".join(f"${i}" for i in range(1, len(V5_COLUMNS) + 1))
        await pg.executemany(f"INSERT INTO requests ({columns}) VALUES ({marks})", rows)
        await pg.executemany("INSERT INTO planner_stats VALUES ($1, $2)", stats.items())
    finally:
        await pg.close()


async def _derived_row(target: Path | str, request_id: str) -> tuple[Any, ...]:
    sql = (
        "SELECT task_key, decision_reason, input_tokens, output_tokens, cached_input_tokens, "
        "cache_write_tokens FROM requests WHERE request_id = "
    )
    if isinstance(target, Path):
        with sqlite3.connect(target) as conn:
            return tuple(conn.execute(sql + "?", (request_id,)).fetchone())
    conn = await asyncpg.connect(target)
    try:
        return tuple(await conn.fetchrow(sql + "$1", request_id))
    finally:
        await conn.close()


async def test_a_version_6_store_derives_the_columns_of_its_rows(
    store_target: Path | str,
) -> None:
    labelled, unlabelled, bare = realistic(1), realistic(2), realistic(3)
    unlabelled.task = None
    unlabelled.prompt = triage("4", "a@b.co", "2024-03-03", "down again")
    bare.task, bare.prompt, bare.decision, bare.usage = None, None, None, None
    await _make_v6(store_target, [labelled, unlabelled, bare])
    store = make_store(store_target)
    await store.open()
    try:
        assert await store.schema_version() == schema.CURRENT_VERSION >= 7
        got = await store.get(unlabelled.request_id)
        assert got is not None and RequestRecord.from_dict(got) == unlabelled
    finally:
        await store.close()
    first = await _derived_row(store_target, labelled.request_id)
    assert first[0] == "classify" and first[2:] == (1201, 180, 1024, 0)
    assert orjson.loads(first[1])[-2:] == [[["large", "cost_ceiling"]], "fallback"]
    second = await _derived_row(store_target, unlabelled.request_id)
    assert second[0] == template_key(unlabelled.prompt)
    assert await _derived_row(store_target, bare.request_id) == (None,) * 6


@pytest.mark.parametrize("final, escalations", [("cheap", 0), ("mid", 0), ("mid", 1), (None, 0)])
@pytest.mark.parametrize("prompt_tokens", [10, 900_000])  # served; infeasible (context)
def test_decision_reason_is_the_same_from_the_typed_decision(
    final: str | None, escalations: int, prompt_tokens: int
) -> None:
    """The writer reads the reason from the record's typed decision; it must equal the one
    read from the decision's dictionary (as a spooled or exported record has it)."""
    from modelroute.planner import RequestContext, plan
    from modelroute.records.record import DecisionView

    from ..policies import model

    policy = load_policy_dict(
        {
            "models": {
                "cheap": model(inp=0.1, quality={"default": 0.9}),
                "mid": model(inp=1.0, quality={"default": 0.95}),
                "pricey": model(inp=90.0, quality={"default": 0.99}),
                "weak": model(inp=0.01, quality={"default": 0.5}),
                "slow": model(p95=9_000, quality={"default": 0.9}),
            },
            "routes": {
                "r": {
                    "strategy": {"kind": "cheapest_qualified"},
                    "constraints": {"max_cost_usd": 0.01, "max_latency_ms": 1000,
                                    "min_quality": 0.8},
                    "fallbacks": ["mid"],
                }
            },
        }
    )  # fmt: skip
    decision = plan(RequestContext(requested="r", prompt_tokens=prompt_tokens), policy)
    assert decision.rejections  # the case under test: rejections to sort and name
    view = DecisionView(decision)
    typed = decision_reason(view, final, escalations)
    assert view._data is None  # read from the Decision: no dictionary, no messages rendered
    assert typed == decision_reason(decision.to_dict(), final, escalations)
    assert orjson.loads(str(typed))[5]  # the rejected (model, reason) pairs are there


def test_the_reason_header_counts_each_rejected_model_once() -> None:
    """``x-modelroute-reason`` says how many models were turned down, not how many reasons."""
    from modelroute.planner import RequestContext, plan

    policy = load_policy_dict(
        {
            "models": {
                "cheap": model(inp=0.1, quality={"r": 0.9}),
                "pricey-slow": model(inp=9_000.0, p95=9_000, quality={"r": 0.99}),
                "weak": model(inp=0.01, quality={"r": 0.5}),
            },
            "routes": {
                "r": {
                    "strategy": {"kind": "cheapest_qualified"},
                    "constraints": {"max_cost_usd": 0.01, "max_latency_ms": 1000,
                                    "min_quality": 0.8},
                }
            },
        }
    )  # fmt: skip
    decision = plan(RequestContext(requested="r", prompt_tokens=10), policy)
    # two reasons for one model, one for another
    assert [r.model for r in decision.rejections] == ["pricey-slow", "pricey-slow", "weak"]
    builder = RecordBuilder(policy, "chat.completions", False, time.monotonic, "off", str)
    builder.decided(decision)
    reason = builder.headers()["x-modelroute-reason"]
    assert reason == "cheapest_qualified/min_cost; 2 rejected"
