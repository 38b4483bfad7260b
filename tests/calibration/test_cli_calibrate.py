"""``modelroute calibrate`` in a real process over a real SQLite store of simulated outcomes:
the threshold it writes meets the target on the held-out prompts and the copy loads; what
the data cannot do exits 1 and writes nothing; bad input exits 2."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
from pathlib import Path

import orjson
import pytest

from modelroute import load_policy
from modelroute.outcomes import Outcome
from modelroute.records.stores.postgres import PostgresStore
from modelroute.records.stores.sqlite import SqliteStore

from ..conftest import EXAMPLES, run_cli
from ..test_readme import BIN, blocks, commands
from .simulated import POLICY, simulated_outcomes


def stored(target: Path | str, outcomes: list[Outcome]) -> str:
    """``outcomes`` written to a SQLite file or a PostgreSQL database; its --store URL."""

    async def write() -> None:
        store = SqliteStore(target) if isinstance(target, Path) else PostgresStore(target)
        await store.open()
        try:
            assert await store.add_outcomes(outcomes) == len(outcomes)
        finally:
            await store.close()

    asyncio.run(write())
    return str(target)


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return stored(tmp_path_factory.mktemp("store") / "outcomes.db", simulated_outcomes(1200))


def calibrate(policy: Path, store: str, *args: str):  # type: ignore[no-untyped-def]
    base = ("calibrate", "--policy", str(policy), "--route", "triage", "--store", store)
    return run_cli(*base, *args)


def test_the_written_policy_loads_with_the_threshold_that_met_the_target(
    policy: Path, store: str, tmp_path: Path
) -> None:
    new = tmp_path / "calibrated.yaml"
    result = calibrate(policy, store, "--target", "accuracy>=0.9", "--write", str(new))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "held out (600 prompts)" in out
    assert "meets the target accuracy >= 0.9" in out
    assert "verdict: the target holds on the held-out prompts" in out
    report = orjson.loads(calibrate(policy, store, "--target", "accuracy>=0.9", "--json").stdout)
    threshold = report["chosen"]["threshold"]
    assert report["chosen"]["signal"] == "logprobs" and report["verdict"] == "calibrated"
    assert report["held_out"]["quality"]["mean"] >= 0.9
    assert f"wrote {new}: routes.triage.strategy.confidence.threshold 0.5 -> {threshold!r}" in out
    rule = load_policy(new).routes["triage"].confidence
    assert rule is not None and rule.threshold == threshold and rule.signal == "logprobs"
    assert policy.read_text() == POLICY  # the policy itself is left as it was
    # Everything but the threshold's line is as written, comments included.
    differ = [
        (a, b)
        for a, b in zip(POLICY.splitlines(), new.read_text().splitlines(), strict=True)
        if a != b
    ]
    assert [a.strip() for a, _ in differ] == ["threshold: 0.5       # a guess, until calibrated"]


def test_outcomes_in_postgresql_calibrate_the_same(policy: Path, store: str, pg_url: str) -> None:
    in_postgres = stored(pg_url, simulated_outcomes(1200))
    args = ("--target", "accuracy>=0.9", "--json")
    from_pg = calibrate(policy, in_postgres, *args)
    assert from_pg.returncode == 0, from_pg.stderr
    assert orjson.loads(from_pg.stdout) == orjson.loads(calibrate(policy, store, *args).stdout)


def test_without_write_the_change_is_printed(policy: Path, store: str) -> None:
    result = calibrate(policy, store, "--target", "quality_ratio>=0.95")
    assert result.returncode == 0, result.stderr
    assert "quality_ratio" in result.stdout and "large alone" in result.stdout
    assert "-        threshold: 0.5       # a guess, until calibrated" in result.stdout
    assert "+        threshold: 0." in result.stdout


def test_an_impossible_target_exits_1_and_writes_nothing(
    policy: Path, store: str, tmp_path: Path
) -> None:
    new = tmp_path / "never.yaml"
    result = calibrate(policy, store, "--target", "accuracy>=0.99", "--write", str(new))
    assert result.returncode == 1
    assert "no threshold meets accuracy >= 0.99" in result.stdout
    assert "cannot meet it on this data" in result.stdout
    assert not new.exists()


def test_too_few_prompts_is_not_enough_evidence(policy: Path, tmp_path: Path) -> None:
    few = stored(tmp_path / "few.db", simulated_outcomes(40))
    result = calibrate(policy, few, "--target", "accuracy>=0.9")
    assert result.returncode == 1
    assert "at least 60 in all at this split; there are 40" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--target", "accuracy>0.9"), 'expected "accuracy>=0.9"'),
        (("--target", "accuracy>=0.9", "--split", "1"), "--split 1: the share held out"),
        (("--target", "accuracy>=0.9", "--route", "plain"), "route 'plain' is not a cascade"),
        (("--target", "accuracy>=0.9", "--route", "nope"), "no route 'nope' in the policy"),
    ],
)
def test_bad_input_exits_2(policy: Path, store: str, args: tuple[str, ...], message: str) -> None:
    result = calibrate(policy, store, *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_the_policy_itself_is_never_overwritten(policy: Path, store: str) -> None:
    result = calibrate(policy, store, "--target", "accuracy>=0.9", "--write", str(policy))
    assert result.returncode == 2 and "--write names the policy itself" in result.stderr
    assert policy.read_text() == POLICY


def test_the_readme_block(tmp_path: Path) -> None:
    """The README's commands, as written, in a folder whose store holds the example route's
    outcomes (its own signal, label_probability, informative)."""
    (tmp_path / "examples").symlink_to(EXAMPLES)
    outcomes = simulated_outcomes(
        1200,
        route="ticket-triage",
        cheap="gpt-4o-mini",
        strong="gpt-4o",
        signal="label_probability",
    )
    stored(tmp_path / "modelroute.db", outcomes)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    for line in commands(blocks()["readme:calibrate"]):
        done = subprocess.run(
            shlex.split(line), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{line}: {done.stdout}{done.stderr}"
    written = load_policy(tmp_path / "classification-calibrated.yaml")
    rule = written.routes["ticket-triage"].confidence
    assert rule is not None and rule.signal == "label_probability" and rule.threshold != 0.85
