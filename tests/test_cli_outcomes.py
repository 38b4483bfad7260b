"""``modelroute outcomes`` and ``modelroute explain --store`` as a user runs them, on a real
SQLite file and a real PostgreSQL database holding outcomes of two versions of a model."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from modelroute.outcomes import Outcome, OutcomeSource
from modelroute.outcomes.intervals import estimate
from modelroute.records.stores.postgres import PostgresStore
from modelroute.records.stores.sqlite import SqliteStore

from .conftest import EXAMPLES, run_cli
from .records.conftest import pg_cluster, pg_url  # noqa: F401  (fixtures)

NOW = time.time()
OLD, NEW = "small-v0", "small-v1-2024-08-06"


def outcomes() -> list[Outcome]:
    def one(i: int, score: float, version: str, at: float, **kw: object) -> Outcome:
        fields: dict[str, object] = {
            "source": OutcomeSource.EVAL, "grader": "exact", "score": score, "model": "small",
            "created_at": at, "prompt_id": f"q{i}", "route": "chat", "task": "qa",
            "reported_model": version, "run": version,
        }  # fmt: skip
        return Outcome(**(fields | kw))  # type: ignore[arg-type]

    old = [one(i, float(i % 3 != 0), OLD, NOW - 40 * 86400 + i) for i in range(90)]
    new = [one(i, float(i % 10 != 0), NEW, NOW - 3600 + i) for i in range(400)]
    shadow = [
        one(i, 0.5 + (i % 5) / 10, NEW, NOW - 60 + i, source=OutcomeSource.SHADOW,
            request_id=f"r{i}", run=None, grader="judge:large")
        for i in range(12)
    ]  # fmt: skip
    large = [one(i, 1.0, "large-v1", NOW - 100 + i, model="large", task="other") for i in range(40)]
    return [*old, *new, *shadow, *large]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = str(tmp_path / "records.db")
        store: SqliteStore | PostgresStore = SqliteStore(url)
    else:
        url = str(request.getfixturevalue("pg_url"))
        store = PostgresStore(url)

    async def seed() -> None:
        await store.open()
        try:
            await store.add_outcomes(outcomes())
        finally:
            await store.close()

    asyncio.run(seed())
    return url


def test_the_table_has_every_version_with_its_interval(store_url: str) -> None:
    result = run_cli("outcomes", "--store", store_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "route", "model", "version", "n", "mean", "95%", "interval", "sources", "latest",
    ]  # fmt: skip
    rows = [line.split() for line in lines[1:]]
    assert [r[:4] for r in rows] == [
        ["chat", "large", "large-v1", "*"],
        ["chat", "small", NEW, "*"],
        ["chat", "small", OLD, "90"],
    ]
    new = estimate([o.score for o in outcomes() if o.reported_model == NEW])
    assert rows[1][4:9] == [
        "412", f"{new.mean:.3f}", f"[{new.low:.3f},", f"{new.high:.3f}]", "eval+shadow",
    ]  # fmt: skip


def test_json_by_task_source_and_since(store_url: str) -> None:
    result = run_cli("outcomes", "--store", store_url, "--by", "task", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(d["task"], d["model"], d["version"], d["n"], d["current"]) for d in data] == [
        ("other", "large", "large-v1", 40, True),
        ("qa", "small", NEW, 412, True),
        ("qa", "small", OLD, 90, False),
    ]
    assert all(d["low"] <= d["mean"] <= d["high"] for d in data)
    shadow = json.loads(run_cli("outcomes", "--store", store_url, "--source", "shadow",
                                "--json").stdout)  # fmt: skip
    assert [(d["model"], d["n"], d["sources"], d["method"]) for d in shadow] == [
        ("small", 12, ["shadow"], "bootstrap")
    ]
    recent = json.loads(
        run_cli("outcomes", "--store", store_url, "--since", "30d", "--json").stdout
    )
    assert {d["version"] for d in recent} == {NEW, "large-v1"}  # the old run is 40 days old
    none = run_cli("outcomes", "--store", store_url, "--since", "1s")
    assert none.returncode == 0 and none.stdout == ""
    assert "no outcomes" in none.stderr


def test_explain_reads_measured_quality_from_the_store(store_url: str, tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
    )
    policy = str(EXAMPLES / "quickstart.yaml")
    result = run_cli("explain", policy, "--request", str(request), "--store", store_url)
    assert result.returncode == 0, result.stderr
    new = estimate([o.score for o in outcomes() if o.reported_model == NEW])
    assert new.mean is not None and new.half_width is not None
    expected = f"quality {new.mean:.2f} ±{new.half_width:.2f} (n=412, eval+shadow, {NEW})"
    assert expected in result.stdout
    as_json = run_cli("explain", policy, "--request", str(request), "--store", store_url, "--json")
    [small] = [c for t in json.loads(as_json.stdout)["tiers"] for c in t if c["model"] == "small"]
    assert (small["quality_low"], small["quality_version"]) == (new.low, NEW)


def test_bad_input_is_a_one_line_error(tmp_path: Path) -> None:
    missing = run_cli("outcomes", "--store", str(tmp_path / "none.db"))
    assert missing.returncode == 2 and missing.stderr.startswith("error: no records at")
    (tmp_path / "empty.db").touch()
    bad = run_cli("outcomes", "--store", str(tmp_path / "empty.db"), "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr
    source = run_cli("outcomes", "--store", str(tmp_path / "empty.db"), "--source", "rumour")
    assert source.returncode == 2 and "rumour" in source.stderr
