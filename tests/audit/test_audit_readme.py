"""The README's audit commands, run as written in a folder holding a synthetic record store
(``bench/synth_store.py``: the store ``modelroute serve`` would have filled), the policy it was
recorded under, and an OpenAI-style request log."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..conftest import ROOT
from ..test_readme import _sh, blocks, commands
from .test_audit_import import _openai_line, _write_jsonl

sys.path.insert(0, str(ROOT / "bench"))

import synth_store


def test_audit_block(tmp_path: Path) -> None:
    lines = commands(blocks()["readme:audit"])
    assert [line.split()[1] for line in lines] == ["audit", "audit", "audit"]
    synth_store.generate(
        str(tmp_path / "modelroute.db"), 20_000, days=10, policy_out=str(tmp_path / "policy.yaml"),
        quiet=True,
    )  # fmt: skip
    _write_jsonl(tmp_path / "requests.jsonl", [_openai_line(0, i, "gpt-4o") for i in range(9)])
    table, as_json, imported = (_sh(line, cwd=tmp_path) for line in lines)
    for result in (table, as_json, imported):
        assert result.returncode == 0, result.stderr
    assert "of volume goes to more capable models than required" in table.stdout
    report = json.loads(as_json.stdout)
    assert len(report["tasks"]) == 5 and report["totals"]["requests"] > 0
    assert (tmp_path / "audit.html").read_text().startswith("<!DOCTYPE html>")
    assert "9 requests" in imported.stdout
