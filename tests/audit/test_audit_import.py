"""``modelroute audit --import``: request logs from elsewhere audited without routing anything.
Unlabelled prompts group by template; prices come from the bundled genai-prices data; bad
files are a clear error with exit code 2."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson

from modelroute.records.task_key import template_key

from ..conftest import run_cli

TEMPLATES = (
    ("Classify this ticket as billing, outage or other.",
     lambda i: f'Ticket #{4000 + i} from user{i}@example.com: "my bill {i} is wrong"'),
    ("Extract the order number and the amount as JSON.",
     lambda i: f"Order ORD-{900 + i} placed 2025-02-{1 + i % 27:02d} for {10 + i}.99 USD"),
    ("Translate the customer's message to French.",
     lambda i: f"Message {i}: 'where is my parcel {i}?'"),
)  # fmt: skip
PER_TEMPLATE = 30
T0 = 1_760_000_000


def _messages(t: int, i: int) -> list[dict[str, str]]:
    system, user = TEMPLATES[t]
    return [{"role": "system", "content": system}, {"role": "user", "content": user(i)}]


def _openai_line(t: int, i: int, model: str) -> dict[str, Any]:
    """A chat request and its completion, as an OpenAI Batch input and output line."""
    return {
        "custom_id": f"req-{t}-{i}",
        "request": {"method": "POST", "url": "/v1/chat/completions",
                    "body": {"model": model, "messages": _messages(t, i)}},
        "response": {"status_code": 200, "body": {
            "id": f"chatcmpl-{t}-{i}", "object": "chat.completion", "created": T0 + 3600 * i,
            "model": f"{model}-2024-08-06",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": 120 + i, "completion_tokens": 20,
                      "prompt_tokens_details": {"cached_tokens": 0}}}},
    }  # fmt: skip


def _write_jsonl(path: Path, lines: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))


def _report(*args: str) -> dict[str, Any]:
    done = run_cli("audit", *args, "--json")
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout)  # type: ignore[no-any-return]


def test_an_openai_log_with_three_templates_is_three_tasks(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    _write_jsonl(log, [
        _openai_line(t, i, "gpt-4o") for i in range(PER_TEMPLATE) for t in range(3)
    ])  # fmt: skip
    report = _report("--import", str(log), "--format", "openai-jsonl", "--min-quality", "0.9")
    tasks = report["tasks"]
    assert len(tasks) == 3
    expected = {
        template_key("\n".join(f"{m['role']}: {m['content']}" for m in _messages(t, 0)))
        for t in range(3)
    }
    assert {t["task"] for t in tasks} == expected
    for task in tasks:
        assert task["requests"] == PER_TEMPLATE and not task["labelled"]
        assert task["serving"][0]["model"] == "gpt-4o-2024-08-06"
        assert task["serving"][0]["why"][0]["text"] == "no routing decision recorded"
        # priced from genai-prices: gpt-4o at 2.50 / 10.00 USD per million tokens
        tokens = task["serving"][0]["tokens"]
        assert task["spend_usd"] == (tokens["input"] * 2.5 + tokens["output"] * 10) / 1e6
        # one model in the log, none cheaper named: nothing to move it to
        assert task["status"] == "no_cheaper_candidate" and task["cheapest_qualified"] is None
    assert report["totals"]["requests"] == 3 * PER_TEMPLATE
    assert report["over_provisioned"]["requests"] == 0


def test_a_labelled_log_and_a_cheaper_candidate(tmp_path: Path) -> None:
    lines = [_openai_line(0, i, "gpt-4o") for i in range(10)]
    for line in lines:
        line["request"]["body"]["metadata"] = {"task": "triage"}
    log = tmp_path / "labelled.jsonl"
    _write_jsonl(log, lines)
    report = _report("--import", str(log), "--format", "openai-jsonl", "--min-quality", "0.9",
                     "--candidates", "gpt-4o-mini")  # fmt: skip
    [task] = report["tasks"]
    assert task["task"] == "triage" and task["labelled"]
    mini = next(c for c in task["candidates"] if c["model"] == "gpt-4o-mini")
    assert mini["verdict"] == "not_enough" and mini["n"] == 0
    # nothing measured it: never a guess, the commands that would measure it
    assert task["status"] == "not_enough_evidence" and task["cheapest_qualified"] is None
    assert any("--models gpt-4o-mini" in m for m in task["measure"])


def test_litellm_logging_payloads(tmp_path: Path) -> None:
    payloads = [
        {"id": f"l{i}", "call_type": "acompletion", "model": "claude-3-5-haiku-20241022",
         "model_group": "support", "startTime": T0 + i, "endTime": T0 + i + 1.5,
         "prompt_tokens": 200, "completion_tokens": 10, "response_cost": 0.0002,
         "status": "success" if i else "failure", "messages": _messages(0, i),
         "metadata": {"spend_logs_metadata": {"task": "triage"} if i % 2 else None},
         "request_tags": [] if i % 2 else ["task:refunds"]}
        for i in range(8)
    ]  # fmt: skip
    log = tmp_path / "litellm.json"
    log.write_bytes(orjson.dumps(payloads))  # one JSON array
    report = _report("--import", str(log), "--format", "litellm", "--min-quality", "0.8")
    tasks = {t["task"]: t for t in report["tasks"]}
    assert set(tasks) == {"triage", "refunds"}
    assert tasks["triage"]["spend_usd"] == 4 * 0.0002  # the logged cost, as logged
    assert tasks["refunds"]["serving"][0]["route"] == "support"
    failed = [s for s in tasks["refunds"]["serving"] if s["model"] is None]
    assert failed and failed[0]["requests"] == 1


def test_csv_with_mapped_columns(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["when", "llm", "in", "out", "text", "instructions"])
        for i in range(6):
            out.writerow([f"2025-05-0{1 + i}T10:00:00Z", "gpt-4o-mini", 50, 5,
                          f"Order {i} arrived broken", "Reply politely."])  # fmt: skip
    mapping = "when=timestamp,llm=model,in=input_tokens,out=output_tokens,text=prompt"
    report = _report("--import", str(path), "--format", "csv", "--map",
                     mapping + ",instructions=system")  # fmt: skip
    [task] = report["tasks"]
    assert task["task"] == template_key("system: Reply politely.\nuser: Order 0 arrived broken")
    assert task["requests"] == 6 and task["status"] == "no_threshold"


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    log = tmp_path / "broken.jsonl"
    log.write_text('{"timestamp": 1760000000, "response": {"body": {"model": "x"}}}\nnot json\n')
    done = run_cli("audit", "--import", str(log), "--format", "openai-jsonl")
    assert done.returncode == 2 and "line 2 is not JSON" in done.stderr
    done = run_cli("audit", "--import", str(log))
    assert done.returncode == 2 and "--import needs --format" in done.stderr
    done = run_cli("audit", "--import", str(log), "--format", "csv", "--map", "a=nonsense")
    assert done.returncode == 2 and "unknown field(s) ['nonsense']" in done.stderr
    log.write_text('{"request": {"body": {"model": "x"}}, "response": {"body": {}}}\n')
    done = run_cli("audit", "--import", str(log), "--format", "openai-jsonl")
    assert done.returncode == 2 and "line 1: no timestamp" in done.stderr
    done = run_cli("audit", "--store", str(tmp_path / "missing.db"))
    assert done.returncode == 2 and "no records at" in done.stderr
    assert "Traceback" not in done.stderr
