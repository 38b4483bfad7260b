"""An LLM judge: a model of the policy, called through the engine, grades an answer.

Three ways to judge, each giving the judge a different yardstick (``criterion`` below):

- against a **reference** answer taken as correct (labelled datasets);
- against a **rubric** (open-ended answers with no single right one);
- against a **baseline** answer from another model (shadow comparisons: is the candidate at
  least as good as what the client got?).

The prompt is a text file (``judge_prompt.txt``, shipped in the package; replaceable) with
``$question``, ``$answer`` and ``$criterion`` placeholders (``$$`` is a literal dollar). The
judge must reply with one JSON object ``{"score": 0-10, "reason": "..."}``, optionally in a
code fence, and nothing else; any other reply is a ``GradingError``, recorded as a grading
failure, never read as a score.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

from modelroute.errors import ModelrouteError
from modelroute.grading.base import Grade, GradingError, Messages

if TYPE_CHECKING:
    from modelroute.router import Router

PLACEHOLDERS = frozenset({"question", "answer", "criterion"})
MAX_SCORE = 10
_REPLY_TOKENS = 300
_EVIDENCE_CHARS = 500
_FENCED = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.S)


class Against(StrEnum):
    REFERENCE = "reference"
    BASELINE = "baseline"
    RUBRIC = "rubric"


_CRITERIA = {
    Against.REFERENCE: (
        "[Reference answer, taken as correct]\n$text\n\n"
        "Score how well the answer agrees with the reference: 10 when it reaches the same "
        "result, 0 when it contradicts the reference or does not reach it."
    ),
    Against.BASELINE: (
        "[Baseline answer, from another assistant; not necessarily correct]\n$text\n\n"
        "Score whether the answer to grade is at least as good as the baseline: 10 when it is "
        "as good or better, 5 when it is somewhat worse, 0 when it is clearly worse."
    ),
    Against.RUBRIC: "[Rubric]\n$text\n\nScore how well the answer meets the rubric.",
}


class JudgePromptError(ValueError):
    """A judge prompt file that cannot be used (missing, or wrong placeholders)."""


@dataclass(frozen=True, slots=True)
class JudgePrompt:
    template: Template
    source: str  # where it was read from, for messages and evidence

    @classmethod
    def default(cls) -> JudgePrompt:
        text = resources.files("modelroute.grading").joinpath("judge_prompt.txt").read_text()
        return cls.from_text(text, "judge_prompt.txt (built in)")

    @classmethod
    def from_file(cls, path: str | Path) -> JudgePrompt:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise JudgePromptError(f"cannot read judge prompt {path}: {exc.strerror}") from None
        return cls.from_text(text, str(path))

    @classmethod
    def from_text(cls, text: str, source: str) -> JudgePrompt:
        template = Template(text)
        if not template.is_valid():
            raise JudgePromptError(f"judge prompt {source}: a '$' that is no placeholder (use $$)")
        names = set(template.get_identifiers())
        missing, unknown = PLACEHOLDERS - names, names - PLACEHOLDERS
        if missing or unknown:
            raise JudgePromptError(
                f"judge prompt {source} must use exactly $question, $answer and $criterion"
                + (f"; missing: {', '.join(sorted(missing))}" if missing else "")
                + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else "")
            )
        return cls(template, source)

    def render(self, question: str, answer: str, against: Against, text: str) -> str:
        criterion = Template(_CRITERIA[against]).substitute(text=text)
        return self.template.substitute(question=question, answer=answer, criterion=criterion)


def question_text(messages: Messages) -> str:
    """The prompt as the judge reads it: a lone user message as is, else one line a turn."""
    turns = [(str(m.get("role", "")), _content(m.get("content"))) for m in messages]
    users = [text for role, text in turns if role == "user"]
    if len(turns) == 1 and users:
        return users[0]
    return "\n".join(f"{role}: {text}" for role, text in turns)


def _content(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "" if content is None else json.dumps(content)


def parse_verdict(reply: str) -> tuple[int, str]:
    """The judge's score (0-10) and reason from its reply; ``GradingError`` unless the reply
    is exactly one such JSON object (a code fence around it is allowed)."""
    text = reply.strip()
    fenced = _FENCED.match(text)
    if fenced:
        text = fenced.group(1).strip()
    evidence = {"reply": reply[:_EVIDENCE_CHARS]}
    try:
        verdict = json.loads(text)
    except ValueError:
        raise GradingError("the judge's reply is not one JSON object", evidence) from None
    if not isinstance(verdict, dict):
        raise GradingError("the judge's reply is not a JSON object", evidence)
    score, reason = verdict.get("score"), verdict.get("reason", "")
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= MAX_SCORE:
        raise GradingError(f"the judge's score is not a whole number 0-{MAX_SCORE}", evidence)
    if not isinstance(reason, str):
        raise GradingError("the judge's reason is not a string", evidence)
    return score, reason


class Judge:
    """Grades with ``model`` (a model of ``router``'s policy, called directly by name).

    With a ``rubric``, every answer is judged by it; otherwise against the reference.
    ``judge()`` takes the yardstick explicitly (a baseline, for shadow comparisons).
    """

    def __init__(
        self,
        router: Router,
        model: str,
        prompt: JudgePrompt | None = None,
        rubric: str | None = None,
    ) -> None:
        if model not in router.policy.models:
            known = ", ".join(sorted(router.policy.models))
            raise ValueError(f"judge model {model!r} is not a model of the policy ({known})")
        self.router = router
        self.model = model
        self.prompt = prompt if prompt is not None else JudgePrompt.default()
        self.rubric = rubric
        self.name = f"judge:{model}"
        self.needs_reference = rubric is None

    async def grade(self, answer: str, reference: Any, messages: Messages = ()) -> Grade:
        if self.rubric is not None:
            return await self.judge(messages, answer, self.rubric, against=Against.RUBRIC)
        if reference is None:
            raise GradingError("a judge without a rubric needs a reference answer")
        text = reference if isinstance(reference, str) else json.dumps(reference)
        return await self.judge(messages, answer, text, against=Against.REFERENCE)

    async def judge(
        self,
        question: Messages | str,
        candidate: str,
        reference_or_baseline: str,
        *,
        against: Against = Against.REFERENCE,
    ) -> Grade:
        """Score ``candidate`` (0-10 from the judge, as a fraction) against a reference, a
        baseline answer or a rubric. Raises ``GradingError`` when no verdict is reached."""
        asked = question if isinstance(question, str) else question_text(question)
        content = self.prompt.render(asked, candidate, against, reference_or_baseline)
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "temperature": 0,
            "max_tokens": _REPLY_TOKENS,
        }
        try:
            result = await self.router.chat(body)
        except ModelrouteError as exc:
            raise GradingError(f"the judge call failed: {exc}", {"judge": self.model}) from None
        cost = result.record.cost_usd or 0.0
        reply = result.completion.content or ""
        try:
            score, reason = parse_verdict(reply)
        except GradingError as exc:
            exc.detail.update(judge=self.model, judge_cost_usd=cost)
            raise
        detail = {
            "judge": self.model,
            "judge_reported_model": result.completion.model_reported,
            "against": str(against),
            "judge_score": score,
            "reason": reason,
            "prompt": self.prompt.source,
        }
        return Grade(score / MAX_SCORE, detail, cost)
