"""The neutral outcome format's one reader (``outcomes.neutral``), as training
(``learned.data.load_outcomes``), simulation (``simulate.read_neutral``) and the evaluation's
import (``evaluation.neutral.OutcomeImport``) see it."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from modelroute.analysis.simulate import read_neutral
from modelroute.evaluation import DatasetError, OutcomeImport
from modelroute.learned.data import load_outcomes
from modelroute.outcomes.neutral import OUTCOMES, PROMPTS, OutcomeDataError, read_outcomes
from tests.evaluation.support import shared_data
from tests.simulate.support import EASY, HARD, write_dataset


def _rewrite(directory: Path, name: str, edit: tuple[str, str]) -> None:
    path = directory / name
    text = gzip.decompress(path.read_bytes()).decode()
    assert edit[0] in text
    path.write_bytes(gzip.compress(text.replace(edit[0], edit[1], 1).encode()))


def _imported(directory: Path) -> list[tuple[str, str, float, float | None]]:
    done = OutcomeImport(directory, "run", clock=lambda: 0.0)
    return [(o.prompt_id or "", o.model, o.score, o.cost_usd) for b in done.batches() for o in b]


def test_training_simulation_and_import_read_the_same_outcomes(tmp_path: Path) -> None:
    toy = write_dataset(tmp_path / "toy", skip=("hard-1", "small-v1"))
    trained = load_outcomes(toy, ["small-v1", "big-v1"])
    table = read_neutral(toy).columns(["small-v1", "big-v1"])
    assert trained.ids == list(table.ids) == EASY + HARD
    np.testing.assert_array_equal(trained.score, table.scores)
    np.testing.assert_array_equal(trained.cost, table.costs)
    row = (EASY + HARD).index("hard-1")
    assert np.isnan(table.scores[row, 0]) and table.scores[row, 1] == 1.0
    imported = _imported(toy)
    assert len(imported) == 15  # 8 prompts x 2 models, one row left out
    for pid, model, score, cost in imported:
        i, j = (EASY + HARD).index(pid), ["small-v1", "big-v1"].index(model)
        assert (score, cost) == (table.scores[i, j], table.costs[i, j])
    assert table.tasks[0] == "easy" and trained.categories[0] == "easy"


def test_an_empty_cost_is_unknown_everywhere(tmp_path: Path) -> None:
    toy = write_dataset(tmp_path / "toy")
    _rewrite(toy, OUTCOMES, ("easy-0,big-v1,1,12,3,10.0", "easy-0,big-v1,1,12,3,"))
    assert np.isnan(read_neutral(toy).costs[0, 0])
    assert np.isnan(load_outcomes(toy, ["big-v1", "small-v1"]).cost[0, 0])
    assert _imported(toy)[0][3] is None


BAD = [
    (OUTCOMES, ("easy-0,big-v1,1,", "easy-0,big-v1,1.5,"), r"outcomes.csv.gz:2: score 1.5 is out"),
    (OUTCOMES, ("easy-0,big-v1,1,", "easy-0,big-v1,x,"), r"outcomes.csv.gz:2: score 'x' is not a"),
    (OUTCOMES, ("easy-1,big-v1", "nope-1,big-v1"), r"outcomes.csv.gz:4: prompt 'nope-1' is not"),
    (OUTCOMES, ("prompt_id,model", "id,model"), r"outcomes.csv.gz:1: expected columns prompt_id"),
    (PROMPTS, ('"id":"easy-1"', '"id":"easy-0"'), r"prompts.jsonl.gz:2: repeats the id 'easy-0'"),
    (PROMPTS, ('"prompt":', '"text":'), r"prompts.jsonl.gz:1: not a prompt line"),
]


@pytest.mark.parametrize(("name", "edit", "message"), BAD)
def test_a_bad_line_is_located_by_every_reader(
    tmp_path: Path, name: str, edit: tuple[str, str], message: str
) -> None:
    toy = write_dataset(tmp_path / "toy")
    _rewrite(toy, name, edit)
    with pytest.raises(OutcomeDataError, match=message):
        read_neutral(toy)
    with pytest.raises(OutcomeDataError, match=message):
        load_outcomes(toy)
    if "repeats" not in message:  # the import keys prompts by id and streams the rows
        with pytest.raises(DatasetError, match=message):
            _imported(toy)


@pytest.mark.parametrize("name", [PROMPTS, OUTCOMES])
def test_a_missing_file_is_named(tmp_path: Path, name: str) -> None:
    toy = write_dataset(tmp_path / "toy")
    (toy / name).unlink()
    expected = rf"toy: no {name} \(expected the neutral outcome format\)"
    for read in (read_outcomes, read_neutral, load_outcomes):
        with pytest.raises(OutcomeDataError, match=expected):
            read(toy)


def test_a_shared_dataset_reads_alike() -> None:
    directory = shared_data() / "gsm8k"
    trained = load_outcomes(directory)
    table = read_neutral(directory).columns(list(trained.models))
    np.testing.assert_array_equal(trained.score, table.scores)
    np.testing.assert_array_equal(trained.cost, table.costs)
