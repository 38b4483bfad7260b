"""Every dataset in the shared data directory loads, and a policy simulates on it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import numpy as np
import orjson
import pytest

from modelroute.analysis.simulate import read_neutral
from modelroute.analysis.simulate.splits import select
from modelroute.evaluation.neutral import is_neutral

from ..evaluation.support import shared_data

# The data README's "complete prompts" (every model answered) per dataset.
COMPLETE = {"mmlu_pro": 11_786, "gsm8k": 1_319, "routerbench_subset": 3_164}


def _datasets() -> list[Path]:
    root = shared_data()
    found = sorted(p for p in root.iterdir() if is_neutral(p))
    assert found, f"no dataset under {root}"
    return found


def test_every_dataset_loads() -> None:
    for directory in _datasets():
        table = read_neutral(directory)
        assert len(table) > 0 and len(table.models) >= 2, directory
        known = ~np.isnan(table.scores)
        assert ((table.scores[known] >= 0) & (table.scores[known] <= 1)).all()
        complete = table.complete()
        if directory.name in COMPLETE:
            assert len(complete) == COMPLETE[directory.name]
        test = select(complete, "test")
        assert 0 < len(test) < len(complete)


def test_routerbench_keeps_its_own_test_split() -> None:
    directory = shared_data() / "routerbench_subset"
    table = read_neutral(directory)
    test = select(table, "test")
    assert set(test.splits) == {"test"}
    assert len(test) == sum(1 for s in table.splits if s == "test") == 439 + 380 + 128


def _policy(models: list[str]) -> str:
    lines = ["models:"]
    for i, name in enumerate(models):
        lines += [
            f"  m{i}:",
            "    provider: openai",
            "    base_url: http://127.0.0.1:9/v1",
            f"    model_id: {orjson.dumps(name).decode()}",
            "    allow_floating: true",
            f"    prices: {{input: {i + 1}, output: {i + 1}}}",
            "    context_window: 1000000",
            "    latency: {p50_ms: 100, p95_ms: 200}",
        ]
    names = ", ".join(f"m{i}" for i in range(len(models)))
    lines += [
        "routes:",
        "  answer:",
        f"    strategy: {{kind: cheapest_qualified, models: [{names}]}}",
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", sorted(COMPLETE))
def test_simulate_runs_on_each_dataset(
    cli: Callable[..., CompletedProcess[str]], tmp_path: Path, name: str
) -> None:
    directory = shared_data() / name
    if not directory.is_dir():
        pytest.skip(f"{name} is not in {directory.parent}")
    table = read_neutral(directory)
    first, second = table.models[:2]
    policy = tmp_path / "policy.yaml"
    policy.write_text(_policy([first, second]))
    done = cli(
        "simulate",
        "--policy",
        str(policy),
        "--outcomes",
        str(directory),
        "--split",
        "test",
        "--json",
        "--pair",
        f"{second},{first}",
    )
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    own = report["lines"][0]
    # cheapest_qualified with no quality floor: the model priced lower in the policy (m0).
    model = next(x for x in report["lines"] if x["name"] == first)
    assert own["quality"]["mean"] == pytest.approx(model["quality"]["mean"])
    assert own["quality"]["n"] == report["prompts"] > 0


def test_the_format_has_one_reader() -> None:
    """Training, simulation and the evaluation's import read the format through one module:
    the same names and the same error."""
    from modelroute.analysis.simulate import table
    from modelroute.evaluation import neutral
    from modelroute.learned import data
    from modelroute.outcomes import neutral as reader

    assert (neutral.PROMPTS, neutral.OUTCOMES, neutral.OUTCOME_COLUMNS) == (
        reader.PROMPTS,
        reader.OUTCOMES,
        reader.OUTCOME_COLUMNS,
    )
    assert table.OutcomeDataError is data.OutcomeDataError is reader.OutcomeDataError
