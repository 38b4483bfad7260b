"""``modelroute explain``: the decision, each rejection with its numbers, the policy hash."""

from __future__ import annotations

import json
from pathlib import Path

from modelroute import load_policy

from .conftest import EXAMPLES, run_cli

DOCS = str(EXAMPLES / "documents.yaml")
REQUEST = str(EXAMPLES / "requests" / "contract-review.json")


def test_over_cost_ceiling_names_the_rejected_and_the_chosen_model() -> None:
    result = run_cli("explain", DOCS, "--request", REQUEST)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "route: contract-review" in out
    assert "chosen: gpt-4o" in out
    # sonnet is preferred (first in the fixed order) but 4000 output tokens at $15/Mtok
    # cost more than the route's $0.05 ceiling.
    assert "- sonnet: over_cost_ceiling: est $0.0601 > $0.0500" in out
    assert load_policy(DOCS).short_hash in out


def test_json_output_is_machine_readable() -> None:
    result = run_cli("explain", DOCS, "--request", REQUEST, "--json")
    data = json.loads(result.stdout)
    assert data["chosen"] == "gpt-4o"
    assert data["policy_hash"] == load_policy(DOCS).hash
    [rejection] = data["rejections"]
    assert rejection["model"] == "sonnet" and rejection["reason"] == "over_cost_ceiling"
    assert rejection["limit"] == 0.05 and rejection["value"] > 0.05


def test_stats_change_the_decision() -> None:
    stats = str(EXAMPLES / "requests" / "stats.json")
    result = run_cli("explain", DOCS, "--request", REQUEST, "--stats", stats, "--json")
    data = json.loads(result.stdout)
    [chosen] = data["tiers"][0]
    assert chosen["quality"] == 0.92 and chosen["quality_source"] == "measured"
    assert chosen["quality_samples"] == 310


def test_measured_quality_shows_its_rated_requests_and_needs_min_samples(
    tmp_path: Path,
) -> None:
    def explain(rated: int, *extra: str) -> str:
        stats = tmp_path / f"stats-{rated}.json"
        entry = {"quality": 0.5, "quality_samples": rated}
        stats.write_text(json.dumps({"routes": {"contract-review": {"gpt-4o": entry}}}))
        result = run_cli("explain", DOCS, "--request", REQUEST, "--stats", str(stats), *extra)
        assert result.returncode == 0, result.stderr
        return result.stdout

    # The default defaults.quality.min_samples is 30 distinct rated requests.
    assert "quality 0.910 (prior: 29 rated requests of 30 needed)" in explain(29)
    data = json.loads(explain(29, "--json"))
    assert data["chosen"] == "gpt-4o"
    [chosen] = data["tiers"][0]
    assert chosen["quality_source"] == "prior" and chosen["quality_samples"] == 29
    measured = explain(30)
    assert "chosen: gpt-4o" not in measured
    assert "gpt-4o: below_min_quality: 0.500 < 0.900 (measured)" in measured


def test_a_measured_quality_without_its_sample_count_is_refused(tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps({"routes": {"contract-review": {"gpt-4o": {"quality": 0.5}}}}))
    result = run_cli("explain", DOCS, "--request", REQUEST, "--stats", str(stats))
    assert result.returncode == 2
    assert "'quality' needs 'quality_samples'" in result.stderr


def test_headers_select_a_route_and_tighten_limits(tmp_path: Path) -> None:
    request = tmp_path / "req.json"
    request.write_text(
        json.dumps(
            {
                "body": {"messages": [{"role": "user", "content": "Total due on this invoice?"}]},
                "headers": {"x-modelroute-task": "invoice-extraction"},
            }
        )
    )
    result = run_cli(
        "explain",
        DOCS,
        "--request",
        str(request),
        "--json",
        "-H",
        "x-modelroute-max-cost-usd: 0.0001",
    )
    data = json.loads(result.stdout)
    assert data["route"] == "invoice-extraction" and data["selected_by"] == "task"
    assert data["limits"]["max_cost_usd"] == 0.0001
    reasons = {(r["model"], r["reason"]) for r in data["rejections"]}
    assert ("haiku", "over_cost_ceiling") in reasons and ("gpt-4o", "over_cost_ceiling") in reasons
    assert data["chosen"] is None


def test_infeasible_decision_lists_every_rejection(tmp_path: Path) -> None:
    request = tmp_path / "req.json"
    request.write_text(
        json.dumps(
            {
                "model": "scanned-report",
                "max_tokens": 900000,
                "messages": [{"role": "user", "content": "x"}],
            }
        )
    )
    result = run_cli("explain", DOCS, "--request", str(request))
    assert result.returncode == 0
    assert "chosen: none" in result.stdout
    assert "sonnet: context_too_small" in result.stdout
    assert "gpt-4o: context_too_small" in result.stdout


def test_bad_inputs_exit_2_without_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    no_messages = tmp_path / "empty.json"
    no_messages.write_text(json.dumps({"model": "faq"}))
    bad_stats = tmp_path / "stats.json"
    bad_stats.write_text(json.dumps({"models": {"haiku": {"latncy": 3}}}))
    cases = [
        (["--request", str(tmp_path / "missing.json")], "request file not found"),
        (["--request", str(broken)], "is not valid JSON"),
        (["--request", str(no_messages)], "'messages' must be a non-empty list"),
        (["--request", REQUEST, "--stats", str(bad_stats)], "unknown field(s) ['latncy']"),
        (["--request", REQUEST, "-H", "x-modelroute-max-cost-usd: cheap"], "must be a number"),
        (["--request", REQUEST, "-H", "x-modelroute-max-cost-usd: inf"], "must be a finite"),
    ]
    for args, message in cases:
        result = run_cli("explain", DOCS, *args)
        assert result.returncode == 2, (args, result.stdout)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_unknown_route_lists_the_known_ones(tmp_path: Path) -> None:
    request = tmp_path / "req.json"
    request.write_text(
        json.dumps({"model": "nope", "messages": [{"role": "user", "content": "x"}]})
    )
    result = run_cli("explain", str(EXAMPLES / "faq.yaml"), "--request", str(request))
    assert result.returncode == 2
    assert (
        "no route, alias or model named 'nope'" in result.stderr and "help-center" in result.stderr
    )


def test_explain_with_invalid_policy_exits_2(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("models: {}\nroutes: {}\n")
    result = run_cli("explain", str(policy), "--request", REQUEST)
    assert result.returncode == 2 and f"{policy}:" in result.stderr


def test_limits_in_metadata_and_unread_ones_noted(tmp_path: Path) -> None:
    body = json.loads(Path(REQUEST).read_text())
    body["metadata"] = {
        **body["metadata"],
        "x-modelroute-max-latency-ms": "15000",  # the README's name
        "max_costusd": "0.0001",  # a typo: noted, not applied
    }
    request = tmp_path / "req.json"
    request.write_text(json.dumps(body))
    result = run_cli("explain", DOCS, "--request", str(request))
    assert result.returncode == 0, result.stderr
    assert "max_latency_ms=15000" in result.stdout  # the metadata limit applied
    assert (
        "note: metadata key 'max_costusd' looks like a limit but is not one; ignored; "
        "did you mean 'max_cost_usd'?"
    ) in result.stdout
