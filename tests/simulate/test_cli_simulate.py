"""``modelroute simulate`` as a user runs it: a real process, its output and exit codes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from subprocess import CompletedProcess

import orjson
import pytest

from modelroute.evaluation.neutral import OutcomeImport
from modelroute.records.stores.sqlite import SqliteStore

from ..conftest import EXAMPLES
from .support import CASCADE, PER_TASK, write_dataset

Cli = Callable[..., CompletedProcess[str]]


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "toy")


def _policy(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return str(path)


def test_json_report_and_html_plot(cli: Cli, tmp_path: Path, toy: Path) -> None:
    plot = tmp_path / "curves.html"
    done = cli(
        "simulate",
        "--policy",
        _policy(tmp_path, PER_TASK),
        "--outcomes",
        str(toy),
        "--json",
        "--plot",
        str(plot),
        "--pair",
        "big-v1,small-v1",
    )
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    own = report["lines"][0]
    assert own["kind"] == "policy" and own["quality"]["mean"] == 1.0
    assert own["quality"]["n"] == 8 and own["quality"]["low"] < 1.0
    assert report["best_single_model"] == "big-v1"
    assert report["pair"]["apgr"] == pytest.approx(0.75)
    assert report["targets"][0]["saving_vs_best"]["mean"] == pytest.approx(0.45)
    page = plot.read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "<script" not in page


def test_terminal_table(cli: Cli, tmp_path: Path, toy: Path) -> None:
    done = cli("simulate", "--policy", _policy(tmp_path, PER_TASK), "--outcomes", str(toy))
    assert done.returncode == 0, done.stderr
    assert "oracle" in done.stdout and "saving 45%" in done.stdout
    assert "AIQ" in done.stdout


def test_cascade_with_a_verifier(cli: Cli, tmp_path: Path, toy: Path) -> None:
    args = ["simulate", "--policy", _policy(tmp_path, CASCADE), "--outcomes", str(toy), "--json"]
    done = cli(*args, "--verifier-error", "0")
    assert done.returncode == 0, done.stderr
    own = orjson.loads(done.stdout)["lines"][0]
    assert own["quality"]["mean"] == 1.0 and own["cost_per_prompt_usd"] == pytest.approx(6.0)


def test_the_projects_own_outcomes_from_a_store(cli: Cli, tmp_path: Path, toy: Path) -> None:
    """Outcomes imported into a SQLite store, with a confidence logged on the cheap model's
    answers: the cascade replays on them, and its threshold is swept."""
    db = tmp_path / "records.db"
    importer = OutcomeImport(toy, run="toy")

    async def write() -> None:
        store = SqliteStore(db)
        await store.open()
        try:
            for batch in importer.batches():
                logged = [
                    replace(o, confidences={"verifier": 0.9 if o.score else 0.2}, outcome_id="")
                    if o.model == "small-v1"
                    else o
                    for o in batch
                ]
                await store.add_outcomes(logged)
        finally:
            await store.close()

    asyncio.run(write())
    done = cli(
        "simulate",
        "--policy",
        _policy(tmp_path, CASCADE),
        "--outcomes",
        f"sqlite:///{db}",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    assert report["prompts"] == 8
    own = report["lines"][0]
    assert own["quality"]["mean"] == 1.0 and own["cost_per_prompt_usd"] == pytest.approx(6.0)
    settings = [x["setting"] for x in report["lines"] if x["kind"] == "curve"]
    assert 0.0 in settings and 1.0 in settings


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--outcomes", "/nonexistent/dir"], "not a directory"),
        (["--split", "dev"], "--split 'dev'"),
        (["--plot", "out.png"], "name a .html file"),
        (["--pair", "big-v1"], "expected STRONG,WEAK"),
        (["--pair", "big-v1,tiny-v1"], "no outcomes for 'tiny-v1'"),
        (["--route", "nope"], "no route 'nope'"),
    ],
)
def test_bad_input_is_a_message_and_exit_2(
    cli: Cli, tmp_path: Path, toy: Path, args: list[str], message: str
) -> None:
    base = ["simulate", "--policy", _policy(tmp_path, PER_TASK), "--outcomes", str(toy)]
    done = cli(*base, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_a_corrupt_outcomes_file_names_its_line(cli: Cli, tmp_path: Path, toy: Path) -> None:
    import gzip

    (toy / "outcomes.csv.gz").write_bytes(
        gzip.compress(
            b"prompt_id,model,score,input_tokens,output_tokens,cost_usd\neasy-0,big-v1,lots,1,1,1\n"
        )
    )
    done = cli("simulate", "--policy", _policy(tmp_path, PER_TASK), "--outcomes", str(toy))
    assert done.returncode == 2
    assert "outcomes.csv.gz:2: score 'lots' is not a number" in done.stderr


def test_the_readme_block(tmp_path: Path) -> None:
    """The README's command as written, in a folder beside the examples, with the shared
    datasets' folder where the README says it is (``../shared/data``)."""
    import os
    import shlex
    import subprocess
    import sys

    from ..evaluation.support import shared_data
    from ..test_readme import blocks, commands

    (tmp_path / "examples").symlink_to(EXAMPLES)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    (lines,) = commands(blocks()["readme:simulate"])
    line = lines.replace("../shared/data", str(shared_data()))
    done = subprocess.run(
        shlex.split(line), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "APGR" in done.stdout and "oracle" in done.stdout
    assert "<svg" in (tmp_path / "simulate.html").read_text()
