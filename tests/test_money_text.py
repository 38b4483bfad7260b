"""Money as people read it: one helper, with enough significant digits for the sub-cent
amounts a single request costs, in rejection reasons, ``explain`` and the records commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelroute.planner.decision import Reason, Rejection
from modelroute.pricing import usd, usd_pair
from modelroute.records.record import Attempt, RequestRecord
from modelroute.records.stores import open_store
from modelroute.types import Usage

from .conftest import EXAMPLES, run_cli


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "$0.00"),
        (0.05, "$0.0500"),
        (0.0601, "$0.0601"),
        (0.00045, "$0.000450"),
        (1.23e-7, "$0.000000123"),
        (12.5, "$12.50"),
        (1234.5678, "$1234.57"),
        (-0.003, "-$0.00300"),
    ],
)
def test_usd_keeps_three_significant_digits_and_cents(value: float, text: str) -> None:
    assert usd(value) == text


def test_a_pair_gets_the_digits_that_tell_it_apart() -> None:
    assert usd_pair(0.00012345, 0.0001234) == ("$0.00012345", "$0.00012340")
    assert usd_pair(1e-7, 1e-7) == ("$0.000000100", "$0.000000100")


def test_sub_cent_cost_ceiling_rejection_shows_the_numbers() -> None:
    rejection = Rejection("small", Reason.OVER_COST_CEILING, 0.0000412, 0.00001)
    assert rejection.message == "over_cost_ceiling: est $0.0000412 > $0.0000100"
    close = Rejection("small", Reason.OVER_COST_CEILING, 0.0000412, 0.0000411)
    assert close.message == "over_cost_ceiling: est $0.0000412 > $0.0000411"


def test_explain_prints_sub_cent_limits_and_estimates() -> None:
    result = run_cli(
        "explain",
        str(EXAMPLES / "documents.yaml"),
        "--request",
        str(EXAMPLES / "requests" / "contract-review.json"),
        "-H",
        "x-modelroute-max-cost-usd: 0.0000005",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "limits: max_cost_usd=$0.000000500," in out
    assert "$0.0000 " not in out and "$0.0000\n" not in out
    assert "over_cost_ceiling: est $0.0601 > $0.000000500" in out


async def _store_with_a_cheap_request(path: Path) -> None:
    attempt = Attempt(model="small", provider="openai", model_id="small-id", tier=0, started_ms=0.0)
    attempt.outcome, attempt.latency_ms = "ok", 120.0
    attempt.usage, attempt.cost_usd = Usage(12, 3), 0.0000123
    record = RequestRecord(
        request_id="req-cheap",
        started_at=1_767_000_000.0,
        route="chat",
        policy_hash="sha256:abc",
        attempts=[attempt],
        latency_ms=125.0,
        cost_usd=0.0000123,
        final_model="small",
        status="ok",
        http_status=200,
    )
    record.decision = {
        "strategy": "fixed",
        "objective": "declared_order",
        "order": ["small"],
        "tiers": [
            [
                {
                    "model": "small",
                    "cost_usd": 0.0000456,
                    "latency_p95_ms": 300.0,
                    "latency_source": "prior",
                    "quality": None,
                    "quality_source": "unknown",
                }
            ]
        ],
        "rejections": [],
        "notes": [],
    }
    store = open_store(str(path))
    await store.open()
    try:
        await store.write([record])
    finally:
        await store.close()


async def test_records_commands_print_sub_cent_costs(tmp_path: Path) -> None:
    db = tmp_path / "records.db"
    await _store_with_a_cheap_request(db)
    logs = run_cli("logs", "--store", str(db))
    assert logs.returncode == 0, logs.stderr
    assert "$0.0000123" in logs.stdout
    shown = run_cli("show", "req-cheap", "--store", str(db))
    assert shown.returncode == 0, shown.stderr
    assert "cost $0.0000123" in shown.stdout  # the request
    assert "est $0.0000456" in shown.stdout  # the candidate's estimate
    assert "tokens 12/3, $0.0000123" in shown.stdout  # the attempt
    stats = run_cli("stats", "--store", str(db))
    assert stats.returncode == 0, stats.stderr
    assert "$0.0000123" in stats.stdout
    assert json.loads(run_cli("stats", "--store", str(db), "--json").stdout)
