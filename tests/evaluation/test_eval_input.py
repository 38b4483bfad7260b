"""Bad input to ``modelroute eval`` stops it before anything is sent: exit 2, one clear
message naming the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelroute.cli import main
from modelroute.evaluation import DatasetError, load_jsonl
from modelroute.grading import Graders

from ..conftest import run_cli
from .support import dataset_lines, write_jsonl, write_policy

UNREACHABLE = "http://127.0.0.1:9/v1"  # nothing may be sent: the checks come first


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    return write_policy(tmp_path, UNREACHABLE)


def _eval(policy: Path, data: Path, *extra: str) -> tuple[int, str]:
    result = run_cli("eval", str(data), "--policy", str(policy), "--route", "qa",
                     "--store", str(data.parent / "e.db"), *extra)  # fmt: skip
    return result.returncode, result.stderr


def test_missing_dataset(policy: Path, tmp_path: Path) -> None:
    code, err = _eval(policy, tmp_path / "nope.jsonl")
    assert code == 2 and "dataset not found" in err and "Traceback" not in err


def test_malformed_line_names_its_number(policy: Path, tmp_path: Path) -> None:
    lines = [json.dumps(x) for x in dataset_lines(3)]
    data = write_jsonl(tmp_path / "d.jsonl", [lines[0], "", lines[1], '{"messages": [', lines[2]])
    code, err = _eval(policy, data)
    assert code == 2 and f"{data}:4: not valid JSON" in err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"grader": "bleu"}, "unknown grader 'bleu'; known: exact, regex"),
        ({"grader": {"numeric": {"tol": 1}}}, "unknown option(s) ['tol']"),
        ({"grader": {"judge": {"model": "nope"}}}, "judge model 'nope' is not a model"),
        ({"grader": "judge"}, "names no model; name one or pass --judge MODEL"),
        ({"reference": None}, "no 'reference' for grader 'exact'"),
        ({"refernce": "yes"}, "unknown key(s) ['refernce']"),
        ({"messages": []}, "'messages' must be a non-empty list"),
        ({"grader": None}, "no 'grader' (or pass a default grader)"),
    ],
)
def test_bad_lines(policy: Path, tmp_path: Path, change: dict, message: str) -> None:
    """In process (click's runner: the same command, exit code and stderr), for speed."""
    lines = dataset_lines(3)
    lines[1] = {**lines[1], **change}
    lines[1] = {k: v for k, v in lines[1].items() if v is not None or k == "reference"}
    data = write_jsonl(tmp_path / "d.jsonl", lines)
    args = ["eval", str(data), "--policy", str(policy), "--route", "qa"]
    result = CliRunner().invoke(main, [*args, "--store", str(tmp_path / "e.db")])
    assert result.exit_code == 2, result.output
    assert f"{data}:2: " in result.stderr and message in result.stderr, result.stderr


def test_unknown_model_and_route(policy: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", dataset_lines(2))
    code, err = _eval(policy, data, "--models", "small,giant")
    assert code == 2 and "unknown model(s) giant; models: small, big, backup" in err
    result = run_cli("eval", str(data), "--policy", str(policy), "--route", "nope")
    assert result.returncode == 2 and "no route or alias named 'nope'; routes: qa" in result.stderr


def test_a_bad_judge_prompt_file(policy: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", dataset_lines(2))
    prompt = tmp_path / "judge.txt"
    prompt.write_text("Grade $answer please")
    code, err = _eval(policy, data, "--judge-prompt", str(prompt))
    assert code == 2 and "missing: criterion, question" in err


def test_repeated_ids_and_prompts(tmp_path: Path) -> None:
    lines = dataset_lines(3)
    lines[2] = {**lines[2], "id": lines[0]["id"]}
    with pytest.raises(DatasetError, match=r"d.jsonl:3: repeats the id 'q0000' of line 1"):
        load_jsonl(write_jsonl(tmp_path / "d.jsonl", lines), Graders().get)
    anonymous = [{k: v for k, v in line.items() if k != "id"} for line in dataset_lines(2)]
    anonymous.append(anonymous[0])
    with pytest.raises(DatasetError, match=r"repeats the prompt \(give each an 'id'\) of line 1"):
        load_jsonl(write_jsonl(tmp_path / "e.jsonl", anonymous), Graders().get)


def test_prompt_shorthand_limit_and_default_grader(tmp_path: Path) -> None:
    data = write_jsonl(
        tmp_path / "d.jsonl",
        [{"prompt": f"what is {i} + {i}?", "reference": 2 * i} for i in range(5)],
    )
    dataset = load_jsonl(data, Graders().get, default_grader="numeric", limit=3)
    assert dataset.items[0].messages == [{"role": "user", "content": "what is 0 + 0?"}]
    assert len(dataset.items) == 3 and dataset.items[2].grader == "numeric"
    assert dataset.items[1].line == 2 and dataset.items[1].id is None


def test_compare_without_a_store(tmp_path: Path) -> None:
    result = run_cli("eval", "--compare", "a", "b", "--store", str(tmp_path / "none.db"))
    assert result.returncode == 2 and "no outcomes at" in result.stderr
    result = run_cli("eval")
    assert result.returncode == 2 and "give a DATASET" in result.stderr
