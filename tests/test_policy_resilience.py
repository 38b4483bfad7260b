"""The policy's retry and circuit-breaker settings: defaults, per-model overrides, and bad
values reported with file, line and a hint like every other policy problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelroute import PolicyError, load_policy, load_policy_text
from modelroute.policy.compiled import BreakerPolicy

from .conftest import EXAMPLES, run_cli

BASE = (EXAMPLES / "classification.yaml").read_text()
MODELS = "\nmodels:\n"
GPT4O = "    model_id: gpt-4o-2024-08-06\n"


def _with(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def _errors(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, "policy.yaml")
    return [p.render() for p in info.value.problems if p.severity == "error"]


def test_breaker_defaults_apply_to_every_model() -> None:
    policy = load_policy(EXAMPLES / "classification.yaml")
    assert {m.breaker for m in policy.models.values()} == {BreakerPolicy()}
    assert BreakerPolicy() == BreakerPolicy(
        error_rate=0.5, min_calls=50, window_s=10.0, consecutive_failures=10, cooldown_s=30.0
    )
    assert {r.max_ejection_percent for r in policy.routes.values()} == {50}


def test_a_model_overrides_the_breaker_defaults_key_by_key() -> None:
    text = _with(
        MODELS,
        "\ndefaults:\n  circuit_breaker: {cooldown_s: 10, min_calls: 30, max_ejection_percent: 0}\n"
        + MODELS,
    )
    text = text.replace(GPT4O, GPT4O + "    circuit_breaker: {cooldown_s: 60, error_rate: 0.8}\n")
    policy = load_policy_text(text, "policy.yaml")
    assert policy.models["gpt-4o"].breaker == BreakerPolicy(
        error_rate=0.8, min_calls=30, cooldown_s=60.0
    )
    assert policy.models["gpt-4o-mini"].breaker == BreakerPolicy(min_calls=30, cooldown_s=10.0)
    assert policy.routes["ticket-triage"].max_ejection_percent == 0
    assert policy.direct["gpt-4o"].max_ejection_percent == 0


def test_unused_breaker_settings_leave_the_policy_hash_alone() -> None:
    plain = load_policy_text(BASE, "policy.yaml")
    explicit = load_policy_text(_with(MODELS, "\ndefaults:\n  circuit_breaker: {}\n" + MODELS))
    assert plain.hash == explicit.hash
    changed = load_policy_text(
        _with(MODELS, "\ndefaults:\n  circuit_breaker: {cooldown_s: 5}\n" + MODELS)
    )
    assert changed.hash != plain.hash


BAD = [
    (
        _with(MODELS, "\ndefaults:\n  retries: {max_attempts: 0}\n" + MODELS),
        "max_attempts: 0",
        r"max_attempts must be >= 1, got 0.*1 means no retry",
    ),
    (
        _with(MODELS, "\ndefaults:\n  circuit_breaker: {error_rate: 1.5}\n" + MODELS),
        "error_rate: 1.5",
        r"error_rate must be <= 1(\.0)?, got 1.5",
    ),
    (
        _with(MODELS, "\ndefaults:\n  circuit_breaker: {cooldown: 5}\n" + MODELS),
        "cooldown: 5",
        r"unknown key 'cooldown'.*did you mean 'cooldown_s'\?",
    ),
    (
        BASE.replace(GPT4O, GPT4O + "    circuit_breaker: {max_ejection_percent: 10}\n"),
        "max_ejection_percent",
        r"unknown key 'max_ejection_percent'.*allowed keys here: consecutive_failures, "
        r"cooldown_s, error_rate, min_calls, window_s",
    ),
    (
        _with(MODELS, "\ndefaults:\n  circuit_breaker: {max_ejection_percent: 150}\n" + MODELS),
        "max_ejection_percent",
        r"max_ejection_percent must be <= 100, got 150",
    ),
]


@pytest.mark.parametrize(("text", "marker", "pattern"), BAD, ids=[b[1] for b in BAD])
def test_bad_settings_are_located_and_explained(text: str, marker: str, pattern: str) -> None:
    problems = _errors(text)
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if marker in row)
    located = [p for p in problems if re.search(pattern, p)]
    assert located, problems
    assert re.match(rf"policy\.yaml:{line}:\d+: error: ", located[0]), located[0]


def test_the_cli_rejects_a_bad_setting_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(_with(MODELS, "\ndefaults:\n  retries: {max_attempts: 0}\n" + MODELS))
    result = run_cli("check", str(path))
    assert result.returncode == 2, result.stderr
    assert "max_attempts must be >= 1" in result.stderr and "Traceback" not in result.stderr
