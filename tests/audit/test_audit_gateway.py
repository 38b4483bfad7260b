"""The audit of traffic served through the gateway, in SQLite and in PostgreSQL.

The simulator plays two models: ``big`` (5/15 USD per million tokens) and ``small`` (0.5/1.5),
which give the same answers to invoice extractions and different ones to call summaries.
Unlabelled extraction prompts go to a route pinned to ``big``, summaries likewise; sentiment
requests, labelled, go to a cheapest-qualified route where ``small``'s prior is below the bar.
What a shadow comparison would find is found the same way: each request's prompt is sent to
``small`` on the simulator and its answer compared with the one the client got, and the
scores are stored as shadow outcomes (five only, for sentiment). The audit, run as the
``modelroute audit`` command, must name the extraction task as over-provisioned with ``small``
as its cheapest qualified model, the over-provisioned share and the savings the prices imply,
and a policy change whose replay moves the task; the summaries stay (``small`` is measured
below the bar); the sentiment task has too little evidence and gets the commands to get it.
"""

from __future__ import annotations

import asyncio
import time
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from modelroute.analysis.audit_savings import MONTH_S
from modelroute.outcomes import Outcome, OutcomeSource
from modelroute.records.stores.base import Store
from modelroute.records.task_key import template_key
from modelroute.testing import Simulator

from ..conftest import run_cli
from ..gateway.harness import Gateway, gateway
from ..records.conftest import make_store

POLICY = """
version: audit-test
defaults:
  timeouts: {attempt_ms: 3000, total_ms: 6000}
  retries: {max_attempts: 1}
models:
  big:
    provider: simulator
    base_url: "{sim}"
    model_id: big-sim
    allow_floating: true
    prices: {input: 5.0, output: 15.0}
    context_window: 100000
    latency: {p50_ms: 50, p95_ms: 100}
    quality: {extract: 0.95, summarize: 0.95, classify: 0.95}
  small:
    provider: simulator
    base_url: "{sim}"
    model_id: small-sim
    allow_floating: true
    prices: {input: 0.5, output: 1.5}
    context_window: 100000
    latency: {p50_ms: 20, p95_ms: 50}
    quality: {extract: 0.6, summarize: 0.6, classify: 0.6}
routes:
  extract:
    constraints: {min_quality: 0.9}
    strategy: {kind: fixed, models: [big]}
  summarize:
    constraints: {min_quality: 0.9}
    strategy: {kind: fixed, models: [big]}
  classify:
    constraints: {min_quality: 0.9}
    strategy: {kind: cheapest_qualified, models: [small, big]}
"""
SIM = {
    "models": {
        "big-sim": {
            "reported_model": "big-2025-01-01",
            "answers": [
                {"match": "invoice", "content": '{"number": "INV", "total": 120.5}'},
                {"match": "minutes:", "content": "The customer wants a quote by Friday."},
                {"match": "review", "content": "positive"},
            ],
        },
        "small-sim": {
            "reported_model": "small-2025-01-01",
            "answers": [
                {"match": "invoice", "content": '{"number": "INV", "total": 120.5}'},
                {"match": "minutes:", "content": "A call happened."},
                {"match": "review", "content": "positive"},
            ],
        },
    }
}
EXTRACT, SUMMARIZE, SENTIMENT = 120, 60, 30
SHADOWED_SENTIMENT = 5


def extraction(i: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "Extract the invoice number and total. Reply in JSON."},
        {"role": "user", "content": f"Invoice INV-2024-{i:05d} from client{i}@example.com, "
                                    f"total {100 + i}.50 EUR, due 2025-0{1 + i % 9}-1{i % 10}"},
    ]  # fmt: skip


def summary(i: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "Summarise the call below in one sentence."},
        {"role": "user", "content": f"Call {i} on 2025-03-{1 + i % 28:02d}, {i % 50} minutes:"
                                    f"\n\nThe customer asked about order {i} and a quote."},
    ]  # fmt: skip


def review(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f'Sentiment of this review #{i}: "great product {i}"'}]


async def _send(gw: Gateway) -> dict[str, tuple[str, list[dict[str, str]]]]:
    """Every request through the gateway with the openai SDK; request id -> (route, messages)."""
    client = openai.AsyncOpenAI(base_url=gw.base_url, api_key="sk-test", max_retries=0)
    gw.closing(client)
    sent: dict[str, tuple[str, list[dict[str, str]]]] = {}
    jobs = [("extract", extraction(i), {}) for i in range(EXTRACT)]
    jobs += [("summarize", summary(i), {}) for i in range(SUMMARIZE)]
    jobs += [("classify", review(i), {"x-modelroute-task": "sentiment"}) for i in range(SENTIMENT)]

    async def one(route: str, messages: list[dict[str, str]], headers: dict[str, str]) -> None:
        raw = await client.chat.completions.with_raw_response.create(
            model=route,
            messages=messages,
            extra_headers=headers,  # type: ignore[arg-type]
        )
        sent[raw.headers["x-modelroute-request-id"]] = (route, messages)

    for start in range(0, len(jobs), 10):
        await asyncio.gather(*(one(*job) for job in jobs[start : start + 10]))
    return sent


async def _shadow(sim: Simulator, gw: Gateway, store: Store, sent: dict[str, Any]) -> int:
    """What the shadow sender would store: ``small``'s answer to each request compared with
    the client's (normalised exact agreement), as shadow outcomes."""
    outcomes = []
    sentiment = 0
    async with httpx.AsyncClient(timeout=10) as http:
        for request_id, (route, messages) in sent.items():
            record = gw.record(request_id)
            if route == "classify":
                sentiment += 1
                if sentiment > SHADOWED_SENTIMENT:
                    continue
            reply = await http.post(
                f"{sim.openai_base_url}/chat/completions",
                json={"model": "small-sim", "messages": messages},
            )
            answer = reply.json()["choices"][0]["message"]["content"]
            agree = answer.strip().lower() == (record.answer or "").strip().lower()
            outcomes.append(
                Outcome(
                    source=OutcomeSource.SHADOW, grader="agreement", score=float(agree),
                    model="small", created_at=time.time(), prompt_id=request_id,
                    task=record.task, route=record.route, reported_model=reply.json()["model"],
                    request_id=request_id,
                )
            )  # fmt: skip
    return await store.add_outcomes(outcomes)


def _expected_savings(gw: Gateway, sent: dict[str, Any]) -> float:
    """What the extraction requests would have cost less at small's prices (from the recorded
    usage and the policy's prices): the configuration's answer."""
    total = 0.0
    for request_id, (route, _) in sent.items():
        if route == "extract":
            usage = gw.record(request_id).usage
            assert usage is not None
            total += (usage.input_tokens * 4.5 + usage.output_tokens * 13.5) / 1e6
    return total


async def test_the_audit_names_the_over_provisioned_task(
    store_target: Path | str, tmp_path: Path
) -> None:
    store = make_store(store_target)
    async with gateway(POLICY, SIM, store=store) as gw:
        sent = await _send(gw)
        policy_file = tmp_path / "policy.yaml"
        policy_file.write_text(POLICY.replace("{sim}", gw.sim.openai_base_url))
        expected = _expected_savings(gw, sent)
    await store.open()  # the gateway's writer closed it once every record was written
    try:
        assert await store.count() == EXTRACT + SUMMARIZE + SENTIMENT
        async with Simulator(SIM) as sim:
            added = await _shadow(sim, gw, store, sent)
    finally:
        await store.close()
    assert added == EXTRACT + SUMMARIZE + SHADOWED_SENTIMENT
    url = str(store_target)
    html = tmp_path / "audit.html"
    done = run_cli("audit", "--store", url, "--policy", str(policy_file), "--json",
                   "--html", str(html))  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    _check_report(report, expected)
    _check_html(html.read_text(encoding="utf-8"), report["headline"])
    text = run_cli("audit", "--store", url, "--policy", str(policy_file))
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[3] == report["headline"]
    assert "over-provisioned" in text.stdout and "not enough evidence" in text.stdout


def _check_report(report: dict[str, Any], expected: float) -> None:
    tasks = {t["task"]: t for t in report["tasks"]}
    assert len(tasks) == 3
    extract = tasks[str(template_key(_prompt(extraction(7))))]
    assert extract["requests"] == EXTRACT and extract["status"] == "over_provisioned"
    cheapest = extract["cheapest_qualified"]
    assert cheapest["model"] == "small" and cheapest["n"] == EXTRACT
    assert cheapest["low"] >= 0.9 and cheapest["scope"] == "task"
    served = extract["serving"][0]
    assert (served["route"], served["model"]) == ("extract", "big")
    assert served["why"][0]["strategy"] == "fixed" and served["why"][0]["selected_by"] == "name"
    assert len(extract["examples"]) == 2 and "Invoice INV-2024-" in extract["examples"][0]
    total = EXTRACT + SUMMARIZE + SENTIMENT
    assert report["over_provisioned"]["requests"] == EXTRACT
    assert report["over_provisioned"]["share"] == pytest.approx(EXTRACT / total)
    assert report["headline"].startswith(f"{EXTRACT / total:.0%} of volume goes to more capable")
    assert extract["recoverable_usd"] == pytest.approx(expected, rel=1e-9)
    savings = report["savings"]
    window = savings["buckets"] * (86_400.0 if savings["bucket"] == "day" else 3_600.0)
    monthly = expected * MONTH_S / window  # the configuration's saving, per month
    assert savings["low_usd"] - 1e-12 <= monthly <= savings["high_usd"] + 1e-12
    assert savings["monthly_usd"] == pytest.approx(monthly, rel=1e-9)
    summarize = tasks[str(template_key(_prompt(summary(3))))]
    assert summarize["status"] == "right_sized" and summarize["cheapest_qualified"] is None
    small = next(c for c in summarize["candidates"] if c["model"] == "small")
    assert small["verdict"] == "below" and small["n"] == SUMMARIZE
    sentiment = tasks["sentiment"]
    assert sentiment["status"] == "not_enough_evidence"
    assert sentiment["cheapest_qualified"] is None
    measure = "\n".join(sentiment["measure"])
    assert "modelroute eval" in measure and "--route classify --models small" in measure
    assert "shadow:" in measure and "- small" in measure
    change = report["policy_change"]
    assert "extract:" in change["yaml"] and "models: [small, big]" in change["yaml"]
    assert change["replay"]["tasks"][extract["task"]]["moved_share"] == 1.0
    assert change["replay"]["tasks"]["sentiment"]["first_model_share"] == {"big": 1.0}


def _prompt(messages: list[dict[str, str]]) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


class _References(HTMLParser):
    """Anything a browser would fetch: URL-valued attributes, scripts, styles' url()."""

    ATTRIBUTES = frozenset({"href", "src", "xlink:href", "action", "srcset", "poster", "data"})

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.tags: set[str] = set()
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self._in_style = tag == "style"
        self.found += [f"{tag} {k}={v}" for k, v in attrs if k in self.ATTRIBUTES]
        if tag in ("script", "link", "iframe", "img", "object", "embed", "base"):
            self.found.append(tag)

    def handle_data(self, data: str) -> None:
        if self._in_style and ("url(" in data or "@import" in data):
            self.found.append(f"style: {data[:80]}")

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False


def _check_html(text: str, headline: str) -> None:
    parser = _References()
    parser.feed(text)
    assert parser.found == []  # nothing fetched at view time: no network, no file
    assert {"svg", "rect", "circle", "line"} <= parser.tags  # the charts are drawn inline
    assert escape(headline) in text
