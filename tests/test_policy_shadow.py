"""A route's ``shadow:`` block: validated with the rest of the policy (every problem at once,
with file, line and a hint; exit code 2 from the CLI) and compiled into the route."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelroute import load_policy, load_policy_text
from modelroute.policy import load_policy_dict

from .conftest import EXAMPLES, run_cli
from .policies import model
from .test_policy_errors import _line_of, _problems

BASE = (EXAMPLES / "classification.yaml").read_text()
ANCHOR = "    output_tokens: 5\n"
GOOD = "{models: [gpt-4o-mini], sample: 0.05, judge: agreement, max_usd_per_day: 5}"


def _with_shadow(tmp_path: Path, shadow: str) -> Path:
    assert ANCHOR in BASE
    path = tmp_path / "policy.yaml"
    path.write_text(BASE.replace(ANCHOR, f"{ANCHOR}    shadow: {shadow}\n", 1))
    return path


CASES = [
    # (name, shadow block, line marker, expected message regex)
    (
        "unknown model",
        "{models: [gpt-4o-mni], sample: 0.05, max_usd_per_day: 5}",
        "gpt-4o-mni",
        r"shadow\.models\[0\]: route 'ticket-triage' references unknown model 'gpt-4o-mni'.*"
        r"did you mean 'gpt-4o-mini'\?",
    ),
    (
        "sample of zero",
        "{models: [gpt-4o-mini], sample: 0, max_usd_per_day: 5}",
        "sample: 0",
        r"shadow\.sample: sample must be > 0(\.0)?, got 0.*share of the route's successful",
    ),
    (
        "sample above one",
        "{models: [gpt-4o-mini], sample: 5, max_usd_per_day: 5}",
        "sample: 5",
        r"shadow\.sample: sample must be <= 1(\.0)?, got 5.*0\.05 is 5%",
    ),
    (
        "judge not in the policy",
        "{models: [gpt-4o-mini], sample: 0.05, judge: gpt4o, max_usd_per_day: 5}",
        "judge: gpt4o",
        r"shadow\.judge: shadow judge 'gpt4o' is neither 'agreement' nor a model of this "
        r"policy.*did you mean 'gpt-4o'\?",
    ),
    (
        "negative budget",
        "{models: [gpt-4o-mini], sample: 0.05, max_usd_per_day: -5}",
        "max_usd_per_day: -5",
        r"shadow\.max_usd_per_day: max_usd_per_day must be >= 0(\.0)?, got -5.*per UTC day",
    ),
    (
        "budget missing",
        "{models: [gpt-4o-mini], sample: 0.05}",
        "shadow:",
        r"shadow\.max_usd_per_day: missing required key 'max_usd_per_day'",
    ),
    (
        "misspelled key",
        "{models: [gpt-4o-mini], sample: 0.05, max_usd_per_day: 5, judje: agreement}",
        "judje",
        r"unknown key 'judje'.*did you mean 'judge'\?",
    ),
    (
        "model listed twice",
        "{models: [gpt-4o-mini, gpt-4o-mini], sample: 0.05, max_usd_per_day: 5}",
        "shadow:",
        r"shadow\.models\[1\]: shadow model 'gpt-4o-mini' is listed twice",
    ),
]


@pytest.mark.parametrize(("name", "shadow", "marker", "pattern"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_shadow_is_located_and_explained(
    tmp_path: Path, name: str, shadow: str, marker: str, pattern: str
) -> None:
    path = _with_shadow(tmp_path, shadow)
    problems = _problems(path)
    assert any(re.search(pattern, p) for p in problems), problems
    located = next(p for p in problems if re.search(pattern, p))
    assert located.startswith(f"{path}:{_line_of(path, marker)}:"), located

    result = run_cli("check", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert re.search(pattern, result.stderr), result.stderr


def test_every_shadow_problem_is_reported_at_once(tmp_path: Path) -> None:
    shadow = "{models: [gpt-5], sample: 0.05, judge: claude, max_usd_per_day: 5}"
    problems = _problems(_with_shadow(tmp_path, shadow))
    assert sum("shadow" in p for p in problems) == 2, problems


def test_a_shadow_is_compiled_into_its_route(tmp_path: Path) -> None:
    path = _with_shadow(tmp_path, GOOD)
    policy = load_policy(path)
    rule = policy.routes["ticket-triage"].shadow
    assert rule is not None
    assert (rule.models, rule.sample, rule.judge, rule.max_usd_per_day) == (
        ("gpt-4o-mini",),
        0.05,
        None,
        5.0,
    )
    assert rule.grader == "agreement"
    shown = run_cli("check", str(path))
    assert shown.returncode == 0, shown.stderr
    assert "shadow: gpt-4o-mini on 5% of requests, by agreement, at most $5.00 a day" in (
        shown.stdout
    )
    judged = load_policy(_with_shadow(tmp_path, GOOD.replace("agreement", "gpt-4o")))
    judged_rule = judged.routes["ticket-triage"].shadow
    assert judged_rule is not None and judged_rule.grader == "judge:gpt-4o"
    assert policy.direct["gpt-4o"].shadow is None  # a request naming a model is not shadowed


def test_the_hash_changes_with_a_shadow_and_not_without_one(tmp_path: Path) -> None:
    plain = load_policy_text(BASE)
    shadowed = load_policy(_with_shadow(tmp_path, GOOD))
    more = load_policy(_with_shadow(tmp_path, GOOD.replace("0.05", "0.1")))
    assert len({plain.hash, shadowed.hash, more.hash}) == 3


def test_a_policy_without_shadows_keeps_the_hash_it_had_before_shadows_existed() -> None:
    """Records made before and after an upgrade stay comparable (explicit prices, so the
    figure does not move with the bundled price data)."""
    spec = {
        "models": {"a": model(inp=1.0, out=2.0, p50=10, p95=20, ctx=8000, model_id="a-2024-01-01")},
        "routes": {"chat": {"strategy": {"kind": "fixed", "models": ["a"]}}},
    }
    assert load_policy_dict(spec).hash == (
        "1a9f8b55118344d952d08836f40cdd02e874d31c1db3eb513b4ec21481c469dd"
    )
