"""What the evaluation tests share: a two-model policy over the simulator, an answer table of
known accuracy, JSONL datasets, and the ``modelroute eval`` command run as a real process
while the simulator keeps serving on the test's event loop."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelroute.outcomes import Outcome, OutcomeSource
from modelroute.records.stores.sqlite import SqliteStore

from ..conftest import ROOT

POLICY = """
version: eval-test
defaults:
  retries: {max_attempts: 1}
models:
  small:
    provider: simulator
    base_url: "{sim}"
    model_id: small-sim
    allow_floating: true
    prices: {input: 1.0, output: 2.0}
    context_window: 100000
    capabilities: [logprobs]
    latency: {p50_ms: 10, p95_ms: 20}
  big:
    provider: simulator
    base_url: "{sim}"
    model_id: big-sim
    allow_floating: true
    prices: {input: 5.0, output: 10.0}
    context_window: 100000
    capabilities: [logprobs]
    latency: {p50_ms: 10, p95_ms: 20}
  backup:
    provider: simulator
    base_url: "{sim}"
    model_id: backup-sim
    allow_floating: true
    prices: {input: 1.0, output: 1.0}
    context_window: 100000
    latency: {p50_ms: 10, p95_ms: 20}
routes:
  qa:
    strategy:
      kind: cascade
      tiers: [[small], [big]]
      confidence: {signal: logprobs, threshold: 0.5}
    fallbacks: [backup]
    retries: {max_attempts: 2, backoff_ms: 1}
    output_tokens: 16
"""

PROMPTS = 100
SMALL_CORRECT = 70  # the small model answers exactly this many of the prompts right
SMALL_LOGPROB = -0.2


def question(i: int) -> str:
    return f"Question number {i:04d}: is this statement true?"


def answer_table(
    correct: int, total: int = PROMPTS, logprob: float = SMALL_LOGPROB
) -> list[dict[str, Any]]:
    """Rows match a substring of the last user text: the first ``correct`` questions get the
    reference answer ("yes"), the rest a wrong one."""
    return [
        {
            "match": f"number {i:04d}:",
            "content": "Yes." if i < correct else "No.",
            "logprob": logprob,
        }
        for i in range(total)
    ]


def sim_config(**small: Any) -> dict[str, Any]:
    return {
        "seed": 3,
        "models": {
            "small-sim": {
                "reported_model": "small-2024-07-18",
                "system_fingerprint": "fp_small_a",
                "tokens_per_second": 1_000_000,
                "answers": answer_table(SMALL_CORRECT),
                **small,
            },
            "big-sim": {
                "reported_model": "big-2024-08-06",
                "tokens_per_second": 1_000_000,
                "default_answer": "yes",
            },
            "backup-sim": {"tokens_per_second": 1_000_000, "default_answer": "yes"},
        },
    }


def write_policy(directory: Path, sim_url: str, text: str = POLICY) -> Path:
    path = directory / "policy.yaml"
    path.write_text(text.replace("{sim}", sim_url))
    return path


def dataset_lines(count: int = PROMPTS, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": f"q{i:04d}",
            "task": "even" if i % 2 == 0 else "odd",
            "messages": [{"role": "user", "content": question(i)}],
            "reference": "yes",
            "grader": "exact",
            **extra,
        }
        for i in range(count)
    ]


def write_jsonl(path: Path, lines: Iterable[Any]) -> Path:
    path.write_text("".join((json.dumps(x) if not isinstance(x, str) else x) + "\n" for x in lines))
    return path


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


async def eval_cli(*args: str, cwd: Path = ROOT) -> Result:
    """``python -m modelroute eval ARGS`` in its own process, awaited without blocking the loop
    (an in-process simulator answers it meanwhile)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "modelroute", "eval", *args,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=600)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


async def stored_outcomes(db: Path, source: OutcomeSource, run: str) -> list[Outcome]:
    """What a SQLite store holds of one run, read through the store's own API."""
    store = SqliteStore(db)
    await store.open()
    try:
        return await store.outcomes(source=source, run=run)
    finally:
        await store.close()


def shared_data() -> Path:
    """The neutral datasets (``shared/data`` beside the checkout, or ``MODELROUTE_DATA``)."""
    candidates = [Path(os.environ["MODELROUTE_DATA"])] if "MODELROUTE_DATA" in os.environ else []
    candidates += [ROOT.parent / "shared" / "data", ROOT.parents[1] / "shared" / "data"]
    for candidate in candidates:
        if (candidate / "gsm8k" / "prompts.jsonl.gz").is_file():
            return candidate
    message = f"the shared datasets are not at {', '.join(map(str, candidates))}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)
