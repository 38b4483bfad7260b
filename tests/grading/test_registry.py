"""Graders by the name a dataset's ``grader`` field gives them."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute.grading import (
    ChoiceMatch,
    ExactMatch,
    Grade,
    Graders,
    GraderSpecError,
    JsonFieldMatch,
    NumericMatch,
    RegexMatch,
)
from modelroute.grading.base import Messages


def test_specs_build_their_graders() -> None:
    graders = Graders()
    assert isinstance(graders.get("exact"), ExactMatch)
    assert isinstance(graders.get("choice"), ChoiceMatch)
    numeric = graders.get({"numeric": {"tolerance": 0.01}})
    assert isinstance(numeric, NumericMatch) and numeric.tolerance == 0.01
    regex = graders.get({"regex": "^yes"})
    assert isinstance(regex, RegexMatch) and regex.pattern is not None
    field = graders.get({"json_field": "a.b"})
    assert isinstance(field, JsonFieldMatch) and field.path == "a.b"
    assert graders.get({"json_field": {"path": "a.b"}}).name == "json_field"
    assert graders.get("numeric") is graders.get("numeric")  # built once per spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bleu", "unknown grader 'bleu'"),
        ({"exact": 1, "regex": 2}, "one key"),
        ({"numeric": {"tol": 1}}, "unknown option(s) ['tol']"),
        ({"numeric": {"tolerance": -1}}, "non-negative"),
        ({"regex": "([unclosed"}, "invalid regex"),
        ("json_field", "needs a path"),
        ({"choice": {"letters": "abc"}}, "upper-case"),
        ({"judge": {"model": "big"}}, "needs the engine"),
        (42, "a name or an object"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: Any, message: str) -> None:
    with pytest.raises(GraderSpecError, match=None) as caught:
        Graders().get(spec)
    assert message in str(caught.value)


class FakeJudge:
    """Stands in for the engine-backed judge: the registry only forwards model and rubric."""

    def __init__(self, model: str | None, rubric: str | None) -> None:
        self.name = f"judge:{model}"
        self.rubric = rubric

    async def grade(self, answer: str, reference: Any, messages: Messages = ()) -> Grade:
        return Grade(1.0)


def test_judge_specs_go_to_the_judge_factory() -> None:
    graders = Graders(judges=FakeJudge)
    assert graders.get({"judge": {"model": "big"}}).name == "judge:big"
    assert graders.get({"judge": "small"}).name == "judge:small"
    assert graders.get("judge").name == "judge:None"  # the factory's default model
    ruled = graders.get({"judge": {"model": "big", "rubric": "polite"}})
    assert isinstance(ruled, FakeJudge) and ruled.rubric == "polite"
    with pytest.raises(GraderSpecError, match="unknown option"):
        graders.get({"judge": {"modle": "big"}})


def test_a_judge_factory_refusal_is_a_spec_error() -> None:
    def refuse(model: str | None, rubric: str | None) -> FakeJudge:
        raise ValueError(f"judge model {model!r} is not a model of the policy")

    with pytest.raises(GraderSpecError, match="not a model of the policy"):
        Graders(judges=refuse).get({"judge": "nope"})
