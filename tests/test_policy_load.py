"""Valid policies: examples load, prices resolve, hashes identify content, warnings warn."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelroute import load_policy, load_policy_text
from modelroute.policy import load_policy_dict
from modelroute.policy.build import is_pinned

from .conftest import EXAMPLES, run_cli
from .policies import model

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def test_there_are_examples() -> None:
    names = {p.stem for p in EXAMPLE_FILES}
    assert {"classification", "documents", "faq", "fallbacks"} <= names


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_loads(path: Path) -> None:
    policy = load_policy(path)
    assert policy.routes and policy.models
    assert len(policy.hash) == 64


def test_check_all_examples_exits_zero() -> None:
    result = run_cli("check", *map(str, EXAMPLE_FILES))
    assert result.returncode == 0, result.stderr
    for path in EXAMPLE_FILES:
        assert f"{path}: ok" in result.stdout


def test_check_summary_names_models_routes_and_never_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = run_cli("check", str(EXAMPLES / "classification.yaml"))
    assert "gpt-4o-mini" in result.stdout and "ticket-triage" in result.stdout
    assert "cascade" in result.stdout
    assert "key=env:OPENAI_API_KEY" in result.stdout


def test_prices_default_from_genai_prices_and_explicit_values_win() -> None:
    policy = load_policy(EXAMPLES / "fallbacks.yaml")
    gpt = policy.models["gpt-4o"].prices
    assert (gpt.input, gpt.output, gpt.cached_input) == (2.5, 10.0, 1.25)
    assert gpt.source == "genai-prices"
    sonnet = policy.models["sonnet"].prices
    assert (sonnet.input, sonnet.output, sonnet.cache_write) == (3.0, 15.0, 3.75)
    local = policy.models["local-llama"].prices
    assert (local.input, local.output, local.source) == (0.0, 0.0, "policy")


def test_partial_explicit_price_overrides_one_field() -> None:
    text = (
        (EXAMPLES / "classification.yaml")
        .read_text()
        .replace(
            "    quality: {ticket-triage: 0.94}",
            "    quality: {ticket-triage: 0.94}\n    prices: {output: 8}",
        )
    )
    prices = load_policy_text(text, "p.yaml").models["gpt-4o"].prices
    assert (prices.input, prices.output, prices.source) == (2.5, 8.0, "policy+genai-prices")


def test_hash_is_canonical_and_ignores_the_version_label() -> None:
    text = (EXAMPLES / "faq.yaml").read_text()
    a = load_policy_text(text, "a.yaml")
    reordered = text.replace('version: "faq-2026-11"', 'version: "another-label"')
    b = load_policy_text(reordered, "b.yaml")
    assert a.hash == b.hash and a.version != b.version
    changed = load_policy_text(text.replace("min_quality: 0.8", "min_quality: 0.81"), "c.yaml")
    assert changed.hash != a.hash


def test_hash_does_not_depend_on_key_order() -> None:
    spec = {
        "models": {"a": model(), "b": model(inp=2)},
        "routes": {"r": {"strategy": {"kind": "fixed", "models": ["a", "b"]}}},
    }
    flipped = {"routes": spec["routes"], "models": {"a": model(), "b": model(inp=2)}}
    assert load_policy_dict(spec).hash == load_policy_dict(flipped).hash


def test_floating_model_id_warns_unless_allowed(tmp_path: Path) -> None:
    text = (EXAMPLES / "classification.yaml").read_text()
    floating = text.replace("model_id: gpt-4o-2024-08-06", "model_id: gpt-4o")
    policy = load_policy_text(floating, "f.yaml")
    [warning] = policy.warnings
    assert warning.severity == "warning" and "not pinned" in warning.message
    assert warning.line is not None
    allowed = floating.replace("model_id: gpt-4o\n", "model_id: gpt-4o\n    allow_floating: true\n")
    assert load_policy_text(allowed, "g.yaml").warnings == ()
    path = tmp_path / "f.yaml"
    path.write_text(floating)
    result = run_cli("check", str(path))
    assert result.returncode == 0 and "warning" in result.stderr and "not pinned" in result.stderr


@pytest.mark.parametrize(
    ("model_id", "pinned"),
    [
        ("gpt-4o-2024-08-06", True),
        ("claude-3-5-haiku-20241022", True),
        ("gpt-3.5-turbo-0125", True),
        ("gemini-1.5-pro-002", True),
        ("llama3:8b-instruct-q4", True),
        ("gpt-4o", False),
        ("claude-3-5-haiku-latest", False),
        ("mistral-large", False),
    ],
)
def test_pinned_detection(model_id: str, pinned: bool) -> None:
    assert is_pinned(model_id) is pinned


def test_yaml_boolean_like_keys_stay_names() -> None:
    policy = load_policy(EXAMPLES / "fallbacks.yaml")  # uses 'on:' under retries
    assert "rate_limited" in policy.routes["assistant"].retries.on


def test_route_defaults_are_inherited() -> None:
    policy = load_policy(EXAMPLES / "fallbacks.yaml")
    route = policy.routes["assistant"]
    assert route.timeouts.attempt_ms == 15000 and route.retries.backoff_ms == 250
    assert route.fallbacks == ("azure-gpt-4o", "sonnet", "local-llama")
