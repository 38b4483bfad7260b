"""Prompt token estimates: repeated texts are counted once, and the estimate is unchanged."""

from __future__ import annotations

from modelroute.features import TokenCounts, count_tokens, request_context

SYSTEM = "You are a careful assistant for a travel agency. Answer in two sentences at most."


class Counting:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, text: str) -> int:
        self.calls.append(text)
        return count_tokens(text)


def _body(question: str) -> dict[str, object]:
    return {
        "model": "chat",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": question},
        ],
    }


def test_cached_counts_equal_fresh_counts() -> None:
    counts = TokenCounts()
    for text in (SYSTEM, "Où est la gare ?", "東京への行き方", SYSTEM):
        assert counts(text) == count_tokens(text) > 0


def test_a_repeated_system_prompt_is_counted_once() -> None:
    tokenizer = Counting()
    counts = TokenCounts(count=tokenizer)
    first = request_context(_body("Is Oslo far from Bergen?"), None, counts)
    request_context(_body("And from Trondheim?"), None, counts)
    assert tokenizer.calls == [SYSTEM, "Is Oslo far from Bergen?", "And from Trondheim?"]
    assert first.prompt_tokens == request_context(_body("Is Oslo far from Bergen?")).prompt_tokens


def test_a_full_table_starts_over() -> None:
    counts = TokenCounts(capacity=2)
    counts("one")
    counts("two")
    counts("three")
    assert set(counts._counts) == {"three"}
