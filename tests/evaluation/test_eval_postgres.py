"""The evaluation path on PostgreSQL: outcomes stored, a rerun resumes."""

from __future__ import annotations

from pathlib import Path

from modelroute.outcomes import OutcomeSource
from modelroute.records.stores.postgres import PostgresStore
from modelroute.testing import Simulator

from .support import (
    PROMPTS,
    SMALL_CORRECT,
    dataset_lines,
    eval_cli,
    sim_config,
    write_jsonl,
    write_policy,
)


async def test_eval_on_postgres_resumes(tmp_path: Path, pg_url: str) -> None:
    data = write_jsonl(tmp_path / "qa.jsonl", dataset_lines())
    async with Simulator(sim_config()) as sim:
        policy = write_policy(tmp_path, sim.openai_base_url)
        args = [str(data), "--policy", str(policy), "--route", "qa", "--models", "small",
                "--store", pg_url, "--json"]  # fmt: skip
        first = await eval_cli(*args, "--limit", "40")
        second = await eval_cli(*args)
        assert sim.stats()["small-sim"] == {"ok": PROMPTS}
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert second.json()["summary"]["resumed"] == 40
    small = second.json()["models"][0]
    assert small["n"] == PROMPTS and small["mean"] == SMALL_CORRECT / PROMPTS
    store = PostgresStore(pg_url)
    await store.open()
    try:
        stored = await store.outcomes(source=OutcomeSource.EVAL, run="qa@qa")
    finally:
        await store.close()
    assert len(stored) == PROMPTS
    assert {o.reported_model for o in stored} == {"small-2024-07-18"}
    assert all("logprobs" in o.confidences for o in stored)
