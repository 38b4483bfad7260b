"""The LLM judge, called through the engine against the simulator over a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from modelroute import Router, load_policy_text
from modelroute.grading import (
    Against,
    Graders,
    GradingError,
    Judge,
    JudgePrompt,
    JudgePromptError,
    parse_verdict,
)
from modelroute.testing import Simulator

POLICY = """
defaults:
  retries: {max_attempts: 1}
models:
  judge:
    provider: simulator
    base_url: "{sim}"
    model_id: judge-sim
    allow_floating: true
    prices: {input: 1.0, output: 2.0}
    context_window: 100000
    latency: {p50_ms: 10, p95_ms: 20}
routes:
  any:
    strategy: {kind: fixed, models: [judge]}
"""

SIM: dict[str, Any] = {
    "models": {
        "judge-sim": {
            "reported_model": "judge-sim-2024-05-13",
            "tokens_per_second": 100000,
            "answers": [
                # rows match a substring of the judge prompt (the last user text)
                {"match": "answer to grade]\nParis", "content": '{"score": 10, "reason": "same"}'},
                {"match": "answer to grade]\nLyon", "content": '{"score": 0, "reason": "wrong"}'},
                {"match": "answer to grade]\nMarseille", "content": "I would say 7/10."},
                {"match": "answer to grade]\nNice", "content": '{"score": 11, "reason": "!"}'},
                {"match": "custom judge", "content": '```json\n{"score": 6}\n```'},
                {"match": "clearly worse", "content": '{"score": 5, "reason": "a bit worse"}'},
            ],
        }
    }
}

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
async def router() -> AsyncIterator[Router]:
    async with Simulator(SIM) as sim:
        policy = load_policy_text(POLICY.replace("{sim}", sim.openai_base_url))
        built = Router(policy, api_keys={})
        try:
            yield built
        finally:
            await built.aclose()


async def test_judge_against_a_reference(router: Router) -> None:
    judge = Judge(router, "judge")
    right = await judge.grade("Paris", "Paris", QUESTION)
    assert right.score == 1.0
    assert right.detail["reason"] == "same" and right.detail["against"] == "reference"
    assert right.detail["judge_reported_model"] == "judge-sim-2024-05-13"
    assert right.cost_usd > 0  # the judge's own call is paid for
    wrong = await judge.grade("Lyon", "Paris", QUESTION)
    assert wrong.score == 0.0 and judge.name == "judge:judge"


async def test_malformed_judge_replies_are_grading_failures(router: Router) -> None:
    judge = Judge(router, "judge")
    with pytest.raises(GradingError, match="not one JSON object") as prose:
        await judge.grade("Marseille", "Paris", QUESTION)
    assert prose.value.detail["reply"] == "I would say 7/10."
    assert prose.value.detail["judge_cost_usd"] > 0
    with pytest.raises(GradingError, match="whole number 0-10"):
        await judge.grade("Nice", "Paris", QUESTION)


async def test_judge_against_a_baseline(router: Router) -> None:
    judge = Judge(router, "judge")
    grade = await judge.judge(QUESTION, "Toulouse", "Paris", against=Against.BASELINE)
    assert grade.score == 0.5 and grade.detail["against"] == "baseline"


async def test_a_replaced_prompt_file_is_used(router: Router, tmp_path: Path) -> None:
    path = tmp_path / "judge.txt"
    path.write_text("A custom judge. Costs $$1.\nQ: $question\nA: $answer\n$criterion\n")
    judge = Judge(router, "judge", JudgePrompt.from_file(path))
    grade = await judge.grade("anything", "Paris", QUESTION)
    assert grade.score == 0.6 and grade.detail["prompt"] == str(path)


def test_prompt_files_must_use_the_placeholders(tmp_path: Path) -> None:
    with pytest.raises(JudgePromptError, match="missing: criterion"):
        JudgePrompt.from_text("$question $answer", "x.txt")
    with pytest.raises(JudgePromptError, match="unknown: reference"):
        JudgePrompt.from_text("$question $answer $criterion $reference", "x.txt")
    with pytest.raises(JudgePromptError, match="cannot read"):
        JudgePrompt.from_file(tmp_path / "missing.txt")


def test_the_shipped_prompt_loads() -> None:
    prompt = JudgePrompt.default()
    text = prompt.render("Q?", "A.", Against.RUBRIC, "be polite")
    assert "Q?" in text and "be polite" in text and '"score"' in text


@pytest.mark.parametrize(
    "reply",
    [
        '{"score": 7.5}',
        '{"score": true}',
        '{"score": "7"}',
        '[{"score": 7}]',
        'Sure: {"score": 7}',
        '{"score": 7, "reason": 3}',
        "",
    ],
)
def test_strict_verdict_parsing(reply: str) -> None:
    with pytest.raises(GradingError):
        parse_verdict(reply)


def test_verdicts_that_parse() -> None:
    assert parse_verdict('{"score": 0}') == (0, "")
    assert parse_verdict(' ```\n{"score": 10, "reason": "ok"}\n``` ') == (10, "ok")


async def test_judge_refuses_a_model_outside_the_policy(router: Router) -> None:
    with pytest.raises(ValueError, match="not a model of the policy"):
        Judge(router, "nope")
    graders = Graders(judges=lambda model, rubric: Judge(router, model or "judge", None, rubric))
    assert graders.get({"judge": {"model": "judge"}}).name == "judge:judge"
