"""A ``learned`` route served by the gateway under uvicorn, against the simulator, with the
``openai`` SDK as the client: the trained router sends easy prompts to the cheap model and
hard ones to the strong one, and every record carries the router file's hash and scores."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from modelroute.analysis.replay import Replay
from modelroute.learned.data import load_outcomes
from modelroute.learned.train import train, write
from tests.learned.support import easy_prompt, hard_prompt, write_outcomes

from .fixtures import sdk_client
from .harness import gateway

POLICY = """
version: learned-1
defaults:
  timeouts: {attempt_ms: 2000, total_ms: 6000}
  retries: {max_attempts: 1}
models:
MODELS
routes:
  smart:
    strategy:
      kind: learned
      models: [cheap, mid, strong]
      router: "ROUTER"
"""

PRICES = {"cheap": 0.1, "mid": 1.0, "strong": 10.0}


def _policy(router: Path) -> str:
    models = "".join(
        f"""  {name}:
    provider: simulator
    base_url: "{{sim}}"
    model_id: {name}-sim
    allow_floating: true
    prices: {{input: {price}, output: {price}}}
    context_window: 8000
    latency: {{p50_ms: 20, p95_ms: 50}}
"""
        for name, price in PRICES.items()
    )
    return POLICY.replace("MODELS\n", models).replace("ROUTER", str(router))


def _sim() -> dict[str, Any]:
    models = {
        f"{name}-sim": {"context_window": 8000, "tokens_per_second": 2000,
                        "default_answer": f"{name} answer"}
        for name in PRICES
    }  # fmt: skip
    return {"seed": 1, "models": models}


@pytest.fixture(scope="module")
def router_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("learned")
    write_outcomes(directory / "outcomes")
    write(train(load_outcomes(directory / "outcomes"), ("knn",)), directory / "router.npz")
    return directory / "router.npz"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_learned_route_through_the_gateway(router_file: Path, stream: bool) -> None:
    digest = hashlib.sha256(router_file.read_bytes()).hexdigest()
    async with gateway(_policy(router_file), _sim()) as gw:
        client = sdk_client(gw)
        answers = []
        for text in (easy_prompt(9000), hard_prompt(9001)):
            messages: Any = [{"role": "user", "content": text}]
            if stream:
                chunks = await client.chat.completions.create(
                    model="smart", messages=messages, stream=True
                )
                parts = [c.choices[0].delta.content or "" async for c in chunks if c.choices]
                answers.append("".join(parts))
            else:
                reply = await client.chat.completions.create(model="smart", messages=messages)
                answers.append(reply.choices[0].message.content)
        assert answers == ["cheap answer", "strong answer"]
        records = gw.records()
        assert [r.final_model for r in records] == ["cheap", "strong"]
        for record in records:
            assert record.decision is not None
            learned = record.decision["learned"]
            assert learned["router_hash"] == digest and learned["kind"] == "knn"
            assert set(learned["scores"]) == set(PRICES)
            assert record.policy_hash == gw.router.policy.hash
        assert records[0].decision["learned"]["scores"]["cheap"] > 0.8
        assert records[1].decision["learned"]["scores"]["cheap"] < 0.5
        # Replayed under the same policy, with the recorded scores: the same decisions.
        replay = Replay(gw.router.policy)
        for record in records:
            replay.add(orjson.loads(orjson.dumps(record.to_dict())))
        total = replay.report()["total"]
        assert (total["replayed"], total["reproduced"]) == (2, 2)
