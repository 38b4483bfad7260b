"""``modelroute train --store``: a router trained on the project's own outcomes. An evaluation
through the real engine against the simulator seeds one store; records, shadow comparisons
and feedback written through the store's API seed another. Both routers route as the data
says."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from modelroute.cli import main
from modelroute.learned import decide
from modelroute.learned.format import load_router
from modelroute.learned.store_data import last_user_text, read_store
from modelroute.outcomes.outcome import Outcome, OutcomeSource, prompt_hash
from modelroute.planner.context import RequestContext
from modelroute.policy.load import load_policy
from modelroute.records.record import RequestRecord
from modelroute.records.stores.sqlite import SqliteStore
from modelroute.testing import Simulator
from tests.evaluation.support import eval_cli, write_jsonl
from tests.learned.support import easy_prompt, hard_prompt, policy_yaml

EVAL_POLICY = """
version: train-store
defaults:
  retries: {max_attempts: 1}
models:
  cheap:
    provider: simulator
    base_url: "{sim}"
    model_id: cheap-sim
    allow_floating: true
    prices: {input: 0.1, output: 0.1}
    context_window: 100000
    latency: {p50_ms: 10, p95_ms: 20}
  strong:
    provider: simulator
    base_url: "{sim}"
    model_id: strong-sim
    allow_floating: true
    prices: {input: 10.0, output: 10.0}
    context_window: 100000
    latency: {p50_ms: 10, p95_ms: 20}
routes:
  qa:
    strategy: {kind: cheapest_qualified, models: [cheap, strong]}
    output_tokens: 16
"""

PROMPTS = 120


def _items() -> list[dict[str, Any]]:
    """Easy prompts (even) and hard ones (odd), each with the answer "yes"."""
    return [
        {
            "id": f"q{i:04d}",
            "task": "qa",
            "prompt": hard_prompt(i) if i % 2 else easy_prompt(i),
            "reference": "yes",
            "grader": "exact",
        }
        for i in range(PROMPTS)
    ]


def _sim() -> dict[str, Any]:
    # cheap answers the easy prompts ("A simple question ...") right and the hard ones wrong
    cheap = {"answers": [{"match": "a simple question", "content": "yes"}], "default_answer": "no"}
    return {
        "seed": 5,
        "models": {
            "cheap-sim": {"tokens_per_second": 1_000_000, **cheap},
            "strong-sim": {"tokens_per_second": 1_000_000, "default_answer": "yes"},
        },
    }


def _route_policy(directory: Path) -> Path:
    path = directory / "route.yaml"
    text = policy_yaml().replace("[cheap, mid, strong]", "[cheap, strong]")
    path.write_text(text)
    return path


async def _train(*args: str) -> Any:
    """``modelroute train ARGS`` (the command runs its own event loop: on a thread)."""
    return await asyncio.to_thread(CliRunner().invoke, main, ["train", *args])


async def test_train_from_an_evaluation_through_the_engine(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "qa.jsonl", _items())
    db = tmp_path / "eval.db"
    async with Simulator(_sim()) as sim:
        policy = tmp_path / "policy.yaml"
        policy.write_text(EVAL_POLICY.replace("{sim}", sim.openai_base_url))
        run = await eval_cli(
            str(data), "--policy", str(policy), "--route", "qa", "--store", str(db),
            "--models", "cheap,strong", "--concurrency", "8",
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert sim.stats() == {"cheap-sim": {"ok": PROMPTS}, "strong-sim": {"ok": PROMPTS}}
    out = tmp_path / "router.npz"
    result = await _train("--store", f"sqlite:///{db}", "--out", str(out), "--kind", "knn")
    assert result.exit_code == 0, result.output
    assert f"{2 * PROMPTS} outcomes on {PROMPTS} prompts from eval, shadow, feedback" in (
        result.output
    )
    router = load_router(out)
    assert router.models == ("cheap", "strong")
    assert router.header["training"]["outcomes"] == f"sqlite:///{db}"
    # the outcomes themselves: cheap right on the easy half only, strong on all
    store = SqliteStore(db)
    await store.open()
    try:
        found = (await read_store(store)).data
    finally:
        await store.close()
    cheap = dict(zip(found.texts, found.score[:, 0], strict=True))
    assert cheap[easy_prompt(2)] == 1.0 and cheap[hard_prompt(3)] == 0.0
    assert (found.score[:, 1] == 1.0).all() and (found.cost[:, 1] > found.cost[:, 0]).all()
    route = load_policy(_route_policy(tmp_path))
    ctx = RequestContext(requested="smart", prompt_tokens=50)
    assert decide(ctx, easy_prompt(9000), route).chosen == "cheap"
    assert decide(ctx, hard_prompt(9001), route).chosen == "strong"


def _record(i: int, text: str, kept: str) -> RequestRecord:
    return RequestRecord(
        request_id=f"req-{i:04d}",
        started_at=time.time(),
        route="smart",
        final_model="strong",
        cost_usd=0.01,
        prompt=kept,
        task="qa",
    )


def _live_outcomes(i: int, text: str) -> list[Outcome]:
    """The request was served by strong; a shadow asked cheap, which agrees on easy prompts
    only; one request in three was rated by the client."""
    rid, now = f"req-{i:04d}", time.time()
    easy = i % 2 == 0
    out = [
        Outcome(
            source=OutcomeSource.SHADOW, grader="agreement", score=1.0 if easy else 0.0,
            model="cheap", created_at=now, prompt_id=rid,
            prompt_hash=prompt_hash([{"role": "user", "content": text}]), task="qa",
            route="smart", cost_usd=0.0001, request_id=rid,
            detail={"baseline_model": "strong"},
        )
    ]  # fmt: skip
    if i % 3 == 0:
        out.append(
            Outcome(
                source=OutcomeSource.FEEDBACK, grader="feedback", score=0.5, model="strong",
                created_at=now, prompt_id=rid, task="qa", route="smart", cost_usd=0.02,
                request_id=rid,
            )
        )  # fmt: skip
    return out


async def _seed(db: Path, count: int, hashed: int) -> None:
    store = SqliteStore(db)
    await store.open()
    try:
        records, outcomes = [], []
        for i in range(count):
            text = hard_prompt(i) if i % 2 else easy_prompt(i)
            kept = f"system: be brief\nuser: {text}"
            if i < hashed:  # a gateway that keeps only the prompt's hash
                kept = "sha256:" + hashlib.sha256(kept.encode()).hexdigest()
            records.append(_record(i, text, kept))
            outcomes += _live_outcomes(i, text)
        await store.write(records)
        await store.add_outcomes(outcomes)
    finally:
        await store.close()


async def test_train_from_shadow_and_feedback_outcomes(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    await _seed(db, 160, hashed=10)
    store = SqliteStore(db)
    await store.open()
    try:
        found = await read_store(store)
    finally:
        await store.close()
    rated = len([i for i in range(160) if i % 3 == 0])
    assert found.outcomes == 160 + rated
    assert found.prompts == 160  # feedback and shadow of one request: one prompt
    assert found.without_text == 10
    data = found.data
    assert len(data.ids) == 150 and data.models == ("cheap", "strong")
    strong = dict(zip(data.texts, data.score[:, 1], strict=True))
    assert strong[easy_prompt(12)] == 0.5  # rated by the client: its score, not the reference
    assert strong[easy_prompt(14)] == 1.0  # the served answer as the shadow's reference
    costs = dict(zip(data.texts, data.cost[:, 1], strict=True))
    assert costs[easy_prompt(14)] == pytest.approx(0.01)  # the stored record's cost
    assert found.references == 150 - len([i for i in range(10, 160) if i % 3 == 0])
    out = tmp_path / "router.npz"
    result = await _train("--store", str(db), "--out", str(out), "--kind", "knn",
                    "--source", "shadow", "--source", "feedback")  # fmt: skip
    assert result.exit_code == 0, result.output
    route = load_policy(_route_policy(tmp_path))
    ctx = RequestContext(requested="smart", prompt_tokens=50)
    assert decide(ctx, easy_prompt(9000), route).chosen == "cheap"
    assert decide(ctx, hard_prompt(9001), route).chosen == "strong"


def test_last_user_text_of_a_kept_prompt() -> None:
    kept = "system: be brief\nuser: first\nassistant: ok\nuser: line one\nline two"
    assert last_user_text(kept) == "line one\nline two"
    assert last_user_text("user: a\nassistant: b") == "a"
    assert last_user_text("sha256:abc") is None and last_user_text(None) is None


async def test_train_store_bad_input_exits_2(tmp_path: Path) -> None:
    both = await _train("--store", "x.db", "--outcomes", str(tmp_path), "--out", "r.npz")
    assert both.exit_code == 2 and "one of them" in both.output
    stray = await _train("--outcomes", str(tmp_path), "--source", "eval", "--out", "r.npz")
    assert stray.exit_code == 2 and "--store" in stray.output
    missing = await _train("--store", str(tmp_path / "none.db"), "--out", "r.npz")
    assert missing.exit_code == 2 and "no records at" in missing.output
    db = tmp_path / "empty.db"
    store = SqliteStore(db)
    await store.open()
    await store.close()
    empty = await _train("--store", str(db), "--out", "r.npz")
    assert empty.exit_code == 2 and "no outcomes from eval, shadow, feedback" in empty.output
    await _seed(db, 40, hashed=0)
    unknown = await _train("--store", str(db), "--out", "r.npz", "--models", "cheap,gpt-9")
    assert unknown.exit_code == 2 and "gpt-9" in unknown.output
