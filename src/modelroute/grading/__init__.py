"""Grading answers: a score in [0, 1] with its evidence.

Local graders compare texts (normalised exact match, regex, numeric with tolerance, multiple
choice letter, JSON field); the LLM judge asks a model of the policy, through the engine,
against a reference, a rubric or a baseline answer. ``Graders`` builds them from the specs
a dataset's ``grader`` field holds.
"""

from modelroute.grading.base import Grade, Grader, GradingError, LocalGrader
from modelroute.grading.choice import ChoiceMatch
from modelroute.grading.exact import ExactMatch, normalise_answer
from modelroute.grading.json_field import JsonFieldMatch
from modelroute.grading.judge import Against, Judge, JudgePrompt, JudgePromptError, parse_verdict
from modelroute.grading.numeric import NumericMatch, final_number
from modelroute.grading.pattern import RegexMatch
from modelroute.grading.registry import GRADER_NAMES, Graders, GraderSpecError

__all__ = [
    "GRADER_NAMES",
    "Against",
    "ChoiceMatch",
    "ExactMatch",
    "Grade",
    "Grader",
    "GraderSpecError",
    "Graders",
    "GradingError",
    "JsonFieldMatch",
    "Judge",
    "JudgePrompt",
    "JudgePromptError",
    "LocalGrader",
    "NumericMatch",
    "RegexMatch",
    "final_number",
    "normalise_answer",
    "parse_verdict",
]
