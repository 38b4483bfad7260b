"""Instructions per call of the request-path stages that the realistic bench policy makes
dearer than the one-model one, counted by callgrind (a loaded machine does not move them).

``bench/policy_cost.py`` measures CPU time per stage and instructions per whole library
request; this splits the planner and the record into the parts a policy's shape sets, with
no upstream and in a few minutes, so a change to one of them can be measured on a busy
machine. Stages (each a loop of one call, the collector paused, the request of
``policy_cost.py`` with its ``warm_stats``):

- ``plan``: ``plan(context, policy, stats)``; ``select``: route selection alone;
- ``decide``: features, plan and the decision put on the record (``policy_cost.py``'s);
- ``row``: the record's store row (``RowEncoder.row``); ``reason``: its ``decision_reason``
  column alone; ``header``: the ``x-modelroute-reason`` header.

    .venv/bin/python bench/policy_stages.py [--calls 2000]

Needs valgrind and a C compiler.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from policy_cost import BODY, CALLGRIND_HELPER, POLICIES, load, stages, warm_stats

from modelroute.features import request_context
from modelroute.planner.select import select_route
from modelroute.recording import RecordBuilder
from modelroute.records.derived import decision_reason


def calls(name: str, workdir: Path) -> dict[str, Callable[[], object]]:
    policy = load(name, "http://127.0.0.1:9/v1", workdir)  # no request is sent
    stats = warm_stats(policy)
    ctx = request_context(BODY, {})
    timed = stages(policy, stats)
    record = timed["decide"]().record  # type: ignore[attr-defined]
    builder: RecordBuilder = timed["decide"]()  # type: ignore[assignment]
    return {
        "plan": timed["plan"],
        "select": lambda: select_route(policy, ctx),
        "decide": timed["decide"],
        "row": timed["row"],
        "reason": lambda: decision_reason(record.decision, "mini-a", 0),
        "header": builder.headers,
    }


def count(n: int, workdir: Path, helper: str) -> None:
    """The process run under callgrind: every stage of every policy between a zeroing and a
    dump of the counters."""
    counters = ctypes.CDLL(helper)
    counters.zero()  # a first dump of its own: the imports and loading, not counted below
    counters.dump(b"start")
    for name in POLICIES:
        for stage, fn in calls(name, workdir).items():
            for _ in range(n // 4):  # warm-up
                fn()
            gc.collect()
            gc.disable()
            counters.zero()
            for _ in range(n):
                fn()
            counters.dump(f"{name}:{stage}".encode())
            gc.enable()


def main() -> None:
    if sys.argv[1:2] == ["--count"]:  # the process under callgrind
        return count(int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000, help="calls per stage")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="policy-stages-"))
    source, helper = workdir / "callgrind_helper.c", workdir / "callgrind_helper.so"
    source.write_text(CALLGRIND_HELPER)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", helper, source], check=True)
    argv = [sys.executable, __file__, "--count", str(args.calls), str(workdir), str(helper)]
    out = workdir / "callgrind.out"
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"callgrind run failed: {done.stderr[-2000:]}")
    counted: dict[tuple[str, str], float] = {}
    for dump in workdir.glob("callgrind.out.*"):
        text = dump.read_text(errors="replace")
        label = re.search(r"^desc: Trigger: Client Request: (.+)$", text, re.M)
        total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if label and total and ":" in label.group(1):
            name, stage = label.group(1).split(":")
            counted[(name, stage)] = int(total.group(1)) / args.calls
    print(f"instructions per call (callgrind, {args.calls} calls per stage)")
    print(f"{'stage':8} {'one-model':>10} {'realistic':>10} {'diff':>9}")
    for stage in ("plan", "select", "decide", "row", "reason", "header"):
        one, real = counted[("one-model", stage)], counted[("realistic", stage)]
        print(f"{stage:8} {one:10,.0f} {real:10,.0f} {real - one:9,.0f}")


if __name__ == "__main__":
    main()
