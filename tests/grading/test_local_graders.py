"""The graders that compare texts: what each extracts, and what it scores."""

from __future__ import annotations

import pytest

from modelroute.grading import (
    ChoiceMatch,
    ExactMatch,
    GradingError,
    JsonFieldMatch,
    NumericMatch,
    RegexMatch,
    final_number,
    normalise_answer,
)


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  an   apple, a pear ", "apple pear"),
        ("Theory of the mind", "theory of mind"),  # "the" inside a word stays
        ("PARIS.", "paris"),
    ],
)
def test_exact_normalises_as_squad_does(text: str, normalised: str) -> None:
    assert normalise_answer(text) == normalised


def test_exact_match_scores_and_shows_evidence() -> None:
    grade = ExactMatch().check("The Eiffel  tower.", "eiffel tower")
    assert grade.score == 1.0
    assert grade.detail == {"normalised": "eiffel tower", "expected": ["eiffel tower"]}
    assert ExactMatch().check("Paris, France", "Paris").score == 0.0
    assert ExactMatch().check("paris", ["Lyon", "Paris"]).score == 1.0  # any of a list
    assert ExactMatch().agree("Billing.", "billing") and not ExactMatch().agree("a", "b")


@pytest.mark.parametrize(
    ("answer", "value", "how"),
    [
        ("She has 3 left, so 5 + 3 = 8.\n#### 8", 8.0, "####"),
        ("Step 1: 12 eggs. The answer is 1,234.", 1234.0, "answer_is"),
        ("Answer: $18", 18.0, "answer_is"),
        ("so it is \\boxed{42} in total, not 7", 42.0, "boxed"),
        ('{"reasoning": "6 * 7 = 42 and 3", "answer": "42"}', 42.0, "json_answer"),
        ("3 apples and 5 pears make 8 fruit", 8.0, "last_number"),
        ("It went down to -3.5 degrees", -3.5, "last_number"),
        ("three quarters: 3/4", 0.75, "last_number"),
        ("about 1,000,000 people", 1_000_000.0, "last_number"),
    ],
)
def test_final_number(answer: str, value: float, how: str) -> None:
    assert final_number(answer) == (value, how)


def test_final_number_none() -> None:
    assert final_number("no digits here") is None


def test_numeric_tolerance_and_reference_forms() -> None:
    exact = NumericMatch()
    assert exact.check("#### 1,234", "1234").score == 1.0
    assert exact.check("#### 72", "Natalia sold 48/2 = 24 clips... #### 72").score == 1.0
    assert exact.check("The answer is 10.004", 10).score == 0.0
    assert NumericMatch(tolerance=0.01).check("The answer is 10.004", 10).score == 1.0
    assert NumericMatch(relative=0.01).check("990", 1000).score == 1.0
    assert NumericMatch(relative=0.01).check("980", 1000).score == 0.0
    none = exact.check("I cannot tell", 5)
    assert none.score == 0.0 and none.detail["how"] == "no number"
    with pytest.raises(GradingError):
        exact.check("5", "no number in the reference")


@pytest.mark.parametrize(
    ("answer", "letter", "how"),
    [
        ("C", "C", "only_letter"),
        ("(C)", "C", "only_letter"),
        ("C.", "C", "only_letter"),
        ("**C**", "C", "only_letter"),
        ("Let's think. 2 + 2 = 4, so the answer is (B).", "B", "answer_is"),
        ("Reasoning...\nAnswer: D", "D", "answer_is"),
        ("The answer is A, not (B)", "A", "answer_is"),
        ("E. Because the others are wrong", "E", "leading"),
        ("Options (A) and (J) look close; I pick (J)", "J", "parenthesised"),
    ],
)
def test_choice_letter_extraction(answer: str, letter: str, how: str) -> None:
    assert ChoiceMatch().chosen(answer) == (letter, how)


def test_choice_ignores_articles_and_letters_outside_the_range() -> None:
    grader = ChoiceMatch()
    assert grader.chosen("a cat sat on the mat") is None
    assert grader.chosen("the answer is a mystery") is None
    assert ChoiceMatch("ABCD").chosen("Answer: E") is None
    graded = grader.check("I do not know", "C")
    assert graded.score == 0.0 and graded.detail["how"] == "no choice letter found"
    assert grader.check("The answer is (C).", "C").score == 1.0
    assert grader.check("The answer is (C).", "(B)").score == 0.0
    with pytest.raises(GradingError):
        grader.check("C", "not a letter key")


def test_regex_searches_the_answer() -> None:
    assert RegexMatch(r"\bParis\b").check("It is Paris.", None).score == 1.0
    assert RegexMatch(r"^Paris$").check("It is Paris.", None).score == 0.0
    bare = RegexMatch()
    graded = bare.check("order 1234 shipped", r"order \d+")
    assert graded.score == 1.0 and graded.detail["match"] == "order 1234"
    with pytest.raises(GradingError):
        bare.check("x", "([unclosed")


def test_json_field_reads_the_answer_json() -> None:
    grader = JsonFieldMatch("order.status")
    assert grader.check('{"order": {"status": "Shipped "}}', "shipped").score == 1.0
    fenced = 'Here you go:\n```json\n{"order": {"status": "lost"}}\n```'
    assert grader.check(fenced, "shipped").score == 0.0
    embedded = 'Sure! {"order": {"status": "shipped", "id": 3}} Anything else?'
    assert grader.check(embedded, {"order": {"status": "shipped"}}).score == 1.0
    missing = grader.check('{"order": {}}', "shipped")
    assert missing.score == 0.0 and missing.detail["why"] == "path not in the JSON"
    assert grader.check("no json at all", "x").detail["why"] == "no JSON in the answer"


def test_json_field_indexes_and_numbers() -> None:
    grader = JsonFieldMatch("items.1.qty")
    assert grader.check('{"items": [{"qty": 1}, {"qty": 2.0}]}', 2).score == 1.0
    assert grader.check('{"items": [{"qty": 1}, {"qty": true}]}', 1).score == 0.0
    assert JsonFieldMatch("tags").check('{"tags": ["a", "b"]}', ["a", "b"]).score == 1.0
    with pytest.raises(ValueError):
        JsonFieldMatch("a..b")


def test_a_missing_reference_is_a_grading_failure_not_a_zero() -> None:
    with pytest.raises(GradingError, match="needs a reference"):
        ExactMatch().check("Paris", None)
    with pytest.raises(GradingError, match="needs a reference"):
        JsonFieldMatch("a").check('{"a": null}', None)
    assert ExactMatch().needs_reference and RegexMatch().needs_reference
    assert not RegexMatch("^yes").needs_reference  # carries its own yardstick
