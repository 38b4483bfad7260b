"""Invalid policies: every problem at once, each with file, line, column and a useful hint;
exit code 2 from the CLI and never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelroute import PolicyError, load_policy, load_policy_text

from .conftest import EXAMPLES, run_cli

BASE = (EXAMPLES / "classification.yaml").read_text()


def _variant(tmp_path: Path, old: str, new: str, name: str = "policy.yaml") -> Path:
    assert old in BASE, old
    path = tmp_path / name
    path.write_text(BASE.replace(old, new, 1))
    return path


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


def _problems(path: Path) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    return [p.render() for p in info.value.problems if p.severity == "error"]


CASES = [
    # (name, old text, new text, line marker, expected message regex)
    (
        "misspelled key",
        "max_latency_ms: 4000",
        "max_latncy_ms: 4000",
        "max_latncy_ms",
        r"unknown key 'max_latncy_ms'.*did you mean 'max_latency_ms'\?",
    ),
    (
        "unknown key",
        "    description:",
        "    colour: blue\n    description:",
        "colour",
        r"unknown key 'colour'.*allowed keys here: .*strategy",
    ),
    (
        "missing model",
        "        - [gpt-4o]\n",
        "        - [gpt4-mini]\n",
        "gpt4-mini",
        r"route 'ticket-triage' references unknown model 'gpt4-mini'.*did you mean 'gpt-4o-mini'",
    ),
    (
        "negative price",
        "    quality: {ticket-triage: 0.86}",
        "    quality: {ticket-triage: 0.86}\n    prices: {input: -1, output: 2}",
        "input: -1",
        r"prices\.input: input must be >= 0.*USD per million tokens",
    ),
    (
        "string for number",
        "    max_output_tokens: 16384\n    capabilities: [tools, json_mode, logprobs]",
        "    max_output_tokens: many\n    capabilities: [tools, json_mode, logprobs]",
        "many",
        r"max_output_tokens: expected a whole number, got 'many'",
    ),
    (
        "unknown field in drop_params",
        "    max_output_tokens: 16384\n    capabilities: [tools, json_mode, logprobs]",
        "    max_output_tokens: 16384\n    capabilities: [tools, json_mode, logprobs]\n"
        "    drop_params: [top_p, temprature]",
        "temprature",
        r"drop_params\[1\]: 'temprature' is not allowed.*did you mean 'temperature'\?",
    ),
    (
        "broken indentation",
        "    output_tokens: 5",
        "   output_tokens: 5",
        "   output_tokens",
        r"YAML syntax error.*indentation",
    ),
    (
        "inline api key",
        "api_key: env:OPENAI_API_KEY",
        "api_key: sk-live-123",
        "sk-live-123",
        r"never the key itself",
    ),
]


@pytest.mark.parametrize(
    ("name", "old", "new", "marker", "pattern"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_policy_is_located_and_explained(
    tmp_path: Path, name: str, old: str, new: str, marker: str, pattern: str
) -> None:
    path = _variant(tmp_path, old, new)
    problems = _problems(path)
    line = _line_of(path, marker)
    assert any(re.search(pattern, p) for p in problems), problems
    located = next(p for p in problems if re.search(pattern, p))
    assert located.startswith(f"{path}:{line}:"), (located, line)

    result = run_cli("check", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert re.search(pattern, result.stderr), result.stderr
    assert f"{path}:{line}:" in result.stderr


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        BASE.replace("max_latency_ms: 4000", "max_latncy_ms: 4000")
        .replace("        - [gpt-4o]\n", "        - [gpt4]\n")
        .replace("context_window: 128000", "context_window: -5", 1)
    )
    path = tmp_path / "many.yaml"
    path.write_text(text)
    problems = _problems(path)
    assert any("max_latncy_ms" in p for p in problems)
    assert any("context_window" in p for p in problems)
    # Cross-references are checked once the schema holds; the schema errors come first.
    path.write_text(
        BASE.replace("        - [gpt-4o]\n", "        - [gpt4]\n").replace(
            "  ticket-triage:", "  ticket-triage:\n    fallbacks: [gpt-5]"
        )
    )
    problems = _problems(path)
    assert sum("unknown model" in p for p in problems) == 2, problems


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    result = run_cli("check", str(path))
    assert result.returncode == 2
    assert f"{path}:1:1: error: the policy file is empty" in result.stderr
    assert "hint: a policy needs at least 'models:' and 'routes:'" in result.stderr


def test_missing_file() -> None:
    result = run_cli("check", "no/such/policy.yaml")
    assert result.returncode == 2
    assert "no/such/policy.yaml: error: file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    result = run_cli("check", str(path))
    assert result.returncode == 2
    assert "a policy must be a mapping" in result.stderr


def test_duplicate_key_is_an_error() -> None:
    text = BASE.replace("  gpt-4o:\n", "  gpt-4o-mini:\n", 1)
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, "dup.yaml")
    assert any("duplicate key 'gpt-4o-mini'" in p.message for p in info.value.problems)


def test_unknown_price_is_an_error_naming_the_fix() -> None:
    text = BASE.replace("model_id: gpt-4o-2024-08-06", "model_id: house-model-2025-01-01")
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, "p.yaml")
    [problem] = info.value.problems
    assert problem.path == "models.gpt-4o.prices"
    assert "no price known for openai model 'house-model-2025-01-01'" in problem.message
    assert problem.hint is not None and "declare prices" in problem.hint


def test_unknown_strategy_kind() -> None:
    text = BASE.replace("kind: cascade", "kind: cascading")
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, "p.yaml")
    rendered = str(info.value)
    assert "cascading" in rendered and "fixed, cheapest_qualified, cascade, learned" in rendered


def test_cascade_on_logprobs_needs_models_that_report_them() -> None:
    text = BASE.replace("capabilities: [tools, json_mode, logprobs]", "capabilities: [tools]")
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, "p.yaml")
    assert any("cannot report logprobs" in p.message for p in info.value.problems)


def test_fixed_strategy_rejects_an_objective() -> None:
    text = BASE.replace(
        """    strategy:
      kind: cascade
      tiers:
        - [gpt-4o-mini]
        - [gpt-4o]
      confidence:
        signal: label_probability
        labels: [billing, bug, account, other]
        threshold: 0.85""",
        """    objective: min_latency
    strategy: {kind: fixed, models: [gpt-4o-mini, gpt-4o]}""",
    )
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, "p.yaml")
    assert any("keeps the declared order" in p.message for p in info.value.problems)


def test_alias_may_not_shadow_a_model() -> None:
    text = BASE.replace("aliases: [support-triage]", "aliases: [gpt-4o]")
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, "p.yaml")
    assert any("alias 'gpt-4o' is also a model name" in p.message for p in info.value.problems)


@pytest.mark.parametrize(
    ("validator", "message"),
    [
        ("xml", "unknown validator 'xml'"),
        ('"regex:[A-Z"', "the validator's pattern does not compile"),
    ],
)
def test_a_validator_no_answer_could_pass_is_an_error(
    tmp_path: Path, validator: str, message: str
) -> None:
    path = _variant(
        tmp_path,
        "        signal: label_probability\n        labels: [billing, bug, account, other]",
        f"        signal: validator\n        validator: {validator}",
    )
    problems = _problems(path)
    line = _line_of(path, "validator: ")
    assert [p for p in problems if message in p and p.startswith(f"{path}:{line}:")], problems
