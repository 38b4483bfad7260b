"""A calibrated threshold written into a copy of the policy: only the values change, every
other byte stays as written, and the copy loads with the new values."""

from __future__ import annotations

import pytest

from modelroute import load_policy_text
from modelroute.analysis.policy_edit import PolicyEditError, set_confidence

from ..conftest import EXAMPLES
from .simulated import POLICY


def changed_lines(old: str, new: str) -> list[tuple[str, str]]:
    pairs = zip(old.splitlines(), new.splitlines(), strict=True)
    return [(a, b) for a, b in pairs if a != b]


def test_the_threshold_is_replaced_where_it_is_written() -> None:
    edited, [change] = set_confidence(POLICY, "new.yaml", "triage", "logprobs", 0.74)
    assert changed_lines(POLICY, edited) == [
        (
            "        threshold: 0.5       # a guess, until calibrated",
            "        threshold: 0.74       # a guess, until calibrated",
        )
    ]
    assert change.path == "routes.triage.strategy.confidence.threshold"
    assert (change.old, change.new) == ("0.5", "0.74")
    assert POLICY.splitlines()[change.line - 1].strip().startswith("threshold: 0.5")
    rule = load_policy_text(edited).routes["triage"].confidence
    assert rule is not None and (rule.signal, rule.threshold) == ("logprobs", 0.74)


def test_a_new_signal_is_written_beside_the_threshold() -> None:
    edited, changes = set_confidence(POLICY, "new.yaml", "triage", "label_probability", 0.6)
    assert [c.path.rsplit(".", 1)[1] for c in changes] == ["signal", "threshold"]
    assert len(changed_lines(POLICY, edited)) == 2
    rule = load_policy_text(edited).routes["triage"].confidence
    assert rule is not None and (rule.signal, rule.threshold) == ("label_probability", 0.6)
    assert rule.labels == ("billing", "bug", "other")


LABELS = "labels: [billing, bug, account, other]"


def test_a_flow_style_block_keeps_its_style() -> None:
    flow = f'      confidence: {{signal: label_probability, {LABELS}, threshold: "0.85"}}'
    text = (EXAMPLES / "classification.yaml").read_text()
    text = text.replace(
        f"""      confidence:
        signal: label_probability
        {LABELS}
        threshold: 0.85""",
        flow,
    )
    edited, _ = set_confidence(text, "new.yaml", "ticket-triage", "logprobs", 0.9)
    expected = f"      confidence: {{signal: logprobs, {LABELS}, threshold: 0.9}}"
    assert changed_lines(text, edited) == [(flow, expected)]


def test_the_same_values_change_nothing() -> None:
    edited, changes = set_confidence(POLICY, "new.yaml", "triage", "logprobs", 0.5)
    assert edited == POLICY and changes == []


def test_a_copy_that_would_not_load_is_refused() -> None:
    # The route declares no verifier model: switching to that signal cannot validate.
    with pytest.raises(PolicyEditError, match="does not load"):
        set_confidence(POLICY, "new.yaml", "triage", "verifier", 0.5)
    with pytest.raises(PolicyEditError, match=r"no 'confidence' under routes\.plain\.strategy"):
        set_confidence(POLICY, "new.yaml", "plain", "logprobs", 0.5)
