"""The neutral per-prompt datasets: recorded outcomes imported as they are, and prompts sent
through the engine with each dataset's default grader."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from modelroute.evaluation.neutral import NO_GRADER
from modelroute.outcomes import Outcome, OutcomeSource
from modelroute.testing import Simulator

from ..conftest import run_cli
from .support import eval_cli, shared_data, sim_config, stored_outcomes, write_policy


@pytest.fixture
def data() -> Path:
    return shared_data()


def _rows(directory: Path) -> list[list[str]]:
    with gzip.open(directory / "outcomes.csv.gz", "rt", newline="") as handle:
        return list(csv.reader(handle))[1:]


def _prompts(directory: Path) -> list[dict]:
    with gzip.open(directory / "prompts.jsonl.gz", "rt") as handle:
        return [json.loads(line) for line in handle]


async def _imported(db: Path, run: str) -> list[Outcome]:
    return await stored_outcomes(db, OutcomeSource.IMPORT, run)


async def test_gsm8k_imports_every_row(data: Path, tmp_path: Path) -> None:
    rows = _rows(data / "gsm8k")
    db = tmp_path / "o.db"
    result = run_cli("eval", str(data / "gsm8k"), "--import", "--store", str(db), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rows"] == report["new"] == len(rows) == 54_079
    stored = await _imported(db, "import:gsm8k")
    assert len(stored) == len(rows)
    # per model: n and mean exactly as the file has them
    by_model: dict[str, list[float]] = defaultdict(list)
    for _, model, score, *_ in rows:
        by_model[model].append(float(score))
    table = {r["model"]: r for r in report["models"]}
    assert set(table) == set(by_model) and len(table) == 41
    for model, scores in by_model.items():
        assert table[model]["n"] == len(scores) == 1319
        assert table[model]["mean"] == pytest.approx(sum(scores) / len(scores))
        assert table[model]["low"] <= table[model]["mean"] <= table[model]["high"]
    one = next(o for o in stored if o.prompt_id == rows[0][0] and o.model == rows[0][1])
    assert one.cost_usd == pytest.approx(float(rows[0][5])) and one.task == "gsm8k"
    assert one.detail == {"input_tokens": int(rows[0][3]), "output_tokens": int(rows[0][4])}
    again = run_cli("eval", str(data / "gsm8k"), "--import", "--store", str(db), "--json")
    assert json.loads(again.stdout)["new"] == 0  # imported once, however often it is run


@pytest.mark.parametrize(("name", "limit"), [("mmlu_pro", 40), ("routerbench_subset", 60)])
async def test_import_with_limit(data: Path, tmp_path: Path, name: str, limit: int) -> None:
    rows = _rows(data / name)
    first = list(dict.fromkeys(r[0] for r in rows))[:limit]
    expected = [r for r in rows if r[0] in set(first)]
    db = tmp_path / "o.db"
    args = ["--import", "--limit", str(limit), "--store", str(db), "--json"]
    result = run_cli("eval", str(data / name), *args)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == len(expected)
    stored = await _imported(db, f"import:{name}")
    assert Counter((o.prompt_id, o.model) for o in stored) == Counter(
        (r[0], r[1]) for r in expected
    )
    categories = {p["id"]: p["category"] for p in _prompts(data / name)}
    assert all(o.task == categories[o.prompt_id] for o in stored)


POLICY = """
defaults:
  retries: {max_attempts: 1}
models:
  reader:
    provider: simulator
    base_url: "{sim}"
    model_id: reader-sim
    allow_floating: true
    prices: {input: 1.0, output: 2.0}
    context_window: 100000
    latency: {p50_ms: 10, p95_ms: 20}
routes:
  bench:
    strategy: {kind: fixed, models: [reader]}
"""


def _reader(answer: str) -> dict:
    config = sim_config()
    config["models"]["reader-sim"] = {"tokens_per_second": 1_000_000, "default_answer": answer}
    return config


async def test_mmlu_pro_prompts_through_the_engine(data: Path, tmp_path: Path) -> None:
    limit = 30
    references = [p["reference"] for p in _prompts(data / "mmlu_pro")[:limit]]
    async with Simulator(_reader("Let me think... The answer is (A).")) as sim:
        policy = write_policy(tmp_path, sim.openai_base_url, POLICY)
        result = await eval_cli(str(data / "mmlu_pro"), "--policy", str(policy), "--route",
                                "bench", "--limit", str(limit), "--store",
                                str(tmp_path / "e.db"), "--json")  # fmt: skip
        assert sim.stats()["reader-sim"] == {"ok": limit}
    assert result.returncode == 0, result.stderr
    reader = result.json()["models"][0]
    assert reader["n"] == limit
    assert reader["mean"] == pytest.approx(references.count("A") / limit)


async def test_gsm8k_prompts_are_graded_by_number(data: Path, tmp_path: Path) -> None:
    references = [p["reference"] for p in _prompts(data / "gsm8k")[:5]]
    async with Simulator(_reader("She makes 9 * 2 = $18.\n#### 18")) as sim:
        policy = write_policy(tmp_path, sim.openai_base_url, POLICY)
        result = await eval_cli(str(data / "gsm8k"), "--policy", str(policy), "--route",
                                "bench", "--limit", "5", "--store", str(tmp_path / "e.db"),
                                "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    tasks = {r["task"]: r for r in result.json()["tasks"]}
    assert tasks["gsm8k"]["n"] == 5
    assert references.count("18") > 0
    assert tasks["gsm8k"]["mean"] == pytest.approx(references.count("18") / 5)


def _neutral(directory: Path, prompts: list[dict]) -> Path:
    directory.mkdir()
    with gzip.open(directory / "prompts.jsonl.gz", "wt") as handle:
        handle.writelines(json.dumps(p) + "\n" for p in prompts)
    with gzip.open(directory / "outcomes.csv.gz", "wt") as handle:
        handle.write("prompt_id,model,score,input_tokens,output_tokens,cost_usd\n")
    (directory / "models.csv").write_text("model,in_usd_per_mtok,out_usd_per_mtok\n")
    return directory


async def test_routerbench_grades_by_category_and_skips_code(tmp_path: Path) -> None:
    def prompt(i: int, category: str, reference: str | None) -> dict:
        text = f"item {i}: pick one\nA) x\nB) y\nPrint only a single choice. Answer:"
        return {
            "id": f"{category}.{i}",
            "dataset": "routerbench_subset",
            "category": category,
            "prompt": text,
            "reference": reference,
            "split": "test",
        }

    prompts = [
        prompt(0, "arc-challenge", "B"),
        prompt(1, "winogrande", "B"),
        prompt(2, "mbpp", None),
        prompt(3, "arc-challenge", None),  # no model agreed on a gold letter
        prompt(4, "winogrande", "A"),
        prompt(5, "mbpp", None),
    ]
    directory = _neutral(tmp_path / "routerbench_subset", prompts)
    async with Simulator(_reader("B")) as sim:
        policy = write_policy(tmp_path, sim.openai_base_url, POLICY)
        result = await eval_cli(str(directory), "--policy", str(policy), "--route", "bench",
                                "--store", str(tmp_path / "e.db"), "--json")  # fmt: skip
        assert sim.stats()["reader-sim"] == {"ok": 3}
    assert result.returncode == 0, result.stderr
    assert result.json()["skipped"] == {NO_GRADER: 2, "no reference answer in the data": 1}
    tasks = {r["task"]: r for r in result.json()["tasks"]}
    assert tasks["arc-challenge"]["mean"] == 1.0 and tasks["winogrande"]["mean"] == 0.5
    result = await eval_cli(str(directory), "--policy", str(policy), "--route", "bench",
                            "--store", str(tmp_path / "e.db"))  # fmt: skip
    assert f"skipped 2 prompts: {NO_GRADER}" in result.stderr


def test_unknown_neutral_dataset_needs_a_grader(tmp_path: Path) -> None:
    prompts = [
        {"id": "x1", "dataset": "trivia", "category": None, "prompt": "Q?", "reference": "A"}
    ]
    directory = _neutral(tmp_path / "trivia", prompts)
    policy = write_policy(tmp_path, "http://127.0.0.1:9/v1", POLICY)
    result = run_cli("eval", str(directory), "--policy", str(policy), "--route", "bench",
                     "--store", str(tmp_path / "e.db"))  # fmt: skip
    assert result.returncode == 2
    assert "no default grader for dataset 'trivia'" in result.stderr and "--grader" in result.stderr
    result = run_cli("eval", str(tmp_path / "trivia"), "--import", "--limit", "1",
                     "--store", str(tmp_path / "e.db"))  # fmt: skip
    assert result.returncode == 0, result.stderr  # an empty outcomes file imports nothing
