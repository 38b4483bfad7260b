"""What a realistic policy costs per request, against the one-model bench policy: CPU time.

The overhead benchmark (bench/overhead_policies.py) measures throughput, which a loaded
machine blurs. This measures CPU time per request instead, in-process, for the same request
the harness sends (model "bench", two short messages, max_tokens 16) under
bench/gateway/policy.yaml (one model) and bench/gateway/policy-realistic.yaml (8 models,
7 routes: the request is selected by match after 5 failing rules, cheapest_qualified over 5
models with 3 rejected, 2 fallbacks). The two policies alternate round by round so drift
hits both alike; the figures are medians over the rounds.

Stages, each a loop of the same call with the garbage collector paused:

- ``plan``: ``plan(context, policy, stats)`` with statistics as the gateway has them once it
  has served a few requests (measured latency for the model that answers);
- ``decide``: what the router does before the upstream call: features, plan, and the
  decision put on the record (``RecordBuilder.context`` and ``decided``);
- ``row``: the record's store row (``RowEncoder.row``: the body as JSON), the writer's share;
- ``request``: the whole library request path, ``Router.chat`` at concurrency 16 against the
  shared harness's nginx upstream, with the gateway's record pipeline (SQLite store, writer,
  metrics, rolling stats), the writer drained before the clock stops;
- ``gw json``, ``gw stream``: ``modelroute serve`` with each policy (as overhead_policies.py
  runs it), the gateway's CPU time per request over a wrk run at concurrency 16, the two
  gateways alternating. On a shared machine this is the steadier figure: throughput on one
  core is the inverse of it, while requests per second also move with whatever else runs.

- with ``--instructions``: instructions per library request (the ``request`` stage, writer
  thread included) counted by callgrind, which does not drift with the machine's load: one
  valgrind process, the counters zeroed before and dumped after each policy's round, the
  planner given ``warm_stats`` (valgrind and a C compiler; a few minutes).

The last three need ../shared/bench/gateway (its setup.sh) or HARNESS=; ``--no-upstream``
skips them.

    .venv/bin/python bench/policy_cost.py [--rounds 5] [--gateway-seconds 4] [--instructions]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop

from modelroute.features import TokenCounts, request_context
from modelroute.planner import ModelStats, StatsSnapshot, plan
from modelroute.policy import Policy, load_policy
from modelroute.recording import RecordBuilder
from modelroute.records.ids import RequestIds
from modelroute.records.stores.body import RowEncoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from modelroute_bin import modelroute_bin

HERE = Path(__file__).resolve().parent
HARNESS = Path(os.environ.get("HARNESS", HERE.parent.parent / "shared" / "bench" / "gateway"))
POLICIES = {"one-model": "policy.yaml", "realistic": "policy-realistic.yaml"}
PATH = "/v1/chat/completions"
BODY: dict[str, Any] = {  # the harness's request_body("bench", stream=False)
    "model": "bench",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Say hello."},
    ],
    "max_tokens": 16,
    "temperature": 0,
}


def load(name: str, upstream: str, workdir: Path) -> Policy:
    text = (HERE / "gateway" / POLICIES[name]).read_text().replace("UPSTREAM_BASE", upstream)
    path = workdir / POLICIES[name]
    path.write_text(text)
    return load_policy(path)


def warm_stats(policy: Policy) -> StatsSnapshot:
    """Statistics as the gateway's rolling window has them after a few answered requests:
    measured latency for the model that answers, on its route and overall."""
    decision = plan(request_context(BODY, {}), policy)
    route, model = decision.route, decision.chosen
    assert model is not None
    seen = ModelStats(latency_p50_ms=0.6, latency_p95_ms=1.5, error_rate=0.0, samples=500)
    return StatsSnapshot(by_route={(route, model): seen}, by_model={model: seen})


def cpu_us(fn: Callable[[], object], n: int) -> float:
    """CPU microseconds per call of ``fn`` (process CPU time, so other load is not billed)."""
    gc.collect()
    gc.disable()
    try:
        start = time.process_time_ns()
        for _ in range(n):
            fn()
        return (time.process_time_ns() - start) / n / 1000
    finally:
        gc.enable()


def stages(policy: Policy, stats: StatsSnapshot) -> dict[str, Callable[[], object]]:
    ctx = request_context(BODY, {})
    counts, ids = TokenCounts(), RequestIds()

    def decide() -> object:
        builder = RecordBuilder(policy, "chat.completions", False, time.monotonic, "off", ids)
        context = request_context(BODY, {}, counts)
        builder.context(context, BODY, stats)
        builder.decided(plan(context, policy, stats))
        return builder

    record = decide().record  # type: ignore[attr-defined]
    encoder = RowEncoder()  # one per store, as the writer has it: statistics encoded once
    return {
        "plan": lambda: plan(ctx, policy, stats),
        "decide": decide,
        "row": lambda: encoder.row(record, {}),
    }


async def request_round(
    policy: Policy, workdir: Path, n: int, conc: int, frozen: bool = False, counters: Any = None
) -> float:
    """CPU microseconds per ``Router.chat`` with the gateway's record pipeline, writer drained.
    ``frozen``: the planner reads ``warm_stats`` instead of the rolling window (under
    callgrind every latency the window measures is 50 times longer, enough to put the
    realistic route's models over its latency budget and change the decision)."""
    from modelroute.serve import build_router

    store = str(workdir / f"records-{time.monotonic_ns()}.db")
    snapshot = warm_stats(policy)
    router, _ = build_router(
        policy,
        store_url=store,
        spool_dir=str(workdir),
        content="truncated",
        traces="off",
        stats=(lambda: snapshot) if frozen else None,
    )
    await router.start()
    router.warm_up()

    async def worker(count: int) -> None:
        for _ in range(count):
            await router.chat(dict(BODY), {})

    await asyncio.gather(*(worker(20) for _ in range(conc)))  # warm the pool and the stats
    # The collector as the gateway sets it after start-up (server/app.py).
    gc.collect()
    gc.freeze()
    threshold = gc.get_threshold()
    gc.set_threshold(20_000, *threshold[1:])
    try:
        if counters is not None:
            counters.zero()
        start = time.process_time_ns()
        await asyncio.gather(*(worker(n // conc) for _ in range(conc)))
        await router.aclose()  # drains the record writer: its work is part of the cost
        return (time.process_time_ns() - start) / (n // conc * conc) / 1000
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


class Gateways:
    """``modelroute serve`` with each policy, as bench/overhead_policies.py runs it (SQLite
    records, metrics), alone on CPU 1; wrk on CPU 0 beside the upstream."""

    def __init__(self, harness: Any, policies: dict[str, Policy], workdir: Path) -> None:
        self.harness, self.workdir = harness, workdir
        self.running: dict[str, tuple[Any, str]] = {}
        for name, policy in policies.items():
            folder = workdir / f"gateway-{name}"
            folder.mkdir()
            port = harness.free_port()
            cmd = (
                f"exec {modelroute_bin()} serve {policy.source} --host 127.0.0.1 "
                f"--port {port} --workers 1 --store {folder}/records.db --spool-dir {folder}"
            )
            proc = harness.start_group(cmd, "1", {}, str(folder / "gateway.log"))
            self.running[name] = (proc, f"http://127.0.0.1:{port}")
            while not harness.port_open("127.0.0.1", port):
                if proc.poll() is not None:
                    sys.exit((folder / "gateway.log").read_text()[-2000:])
                time.sleep(0.05)
        self.bodies = {}
        for mode in ("json", "stream"):
            self.bodies[mode] = workdir / f"{mode}.json"
            self.bodies[mode].write_bytes(harness.request_body("bench", mode == "stream", True))
            for name in self.running:
                self.point(name, mode, 16, 2)  # warm-up

    def point(self, name: str, mode: str, conc: int, seconds: int) -> float:
        """Gateway CPU microseconds per request over one wrk run (the backlog settled first)."""
        h = self.harness
        proc, url = self.running[name]
        h.wait_idle(proc.pid)
        cpu = h.group_cpu_and_rss(proc.pid)[0]
        body, tag = str(self.bodies[mode]), f"{name}-{mode}"
        out = h.run_wrk(url, PATH, {}, body, conc, seconds, 1, "0", 10, str(self.workdir), tag)
        cpu = h.group_cpu_and_rss(proc.pid)[0] - cpu
        if sum(out["errors"].values()) or not out["requests"]:
            sys.exit(f"{tag}: {out['errors']} errors, {out['requests']} requests")
        return 1e6 * cpu / out["requests"]

    def stop(self) -> None:
        for proc, _ in self.running.values():
            self.harness.stop_group(proc)


def report(samples: dict[tuple[str, str], list[float]]) -> None:
    order = ["plan", "decide", "row", "request", "gw json", "gw stream"]
    names = sorted({stage for stage, _ in samples}, key=order.index)
    print(f"{'stage':9} {'one-model us':>13} {'realistic us':>13} {'diff us':>8} {'ratio':>6}")
    for stage in names:
        one = statistics.median(samples[(stage, "one-model")])
        real = statistics.median(samples[(stage, "realistic")])
        print(f"{stage:9} {one:13.2f} {real:13.2f} {real - one:8.2f} {real / one:6.2f}")
    for stage in names:
        for name in POLICIES:
            rounds = " ".join(f"{v:.1f}" for v in samples[(stage, name)])
            print(f"  {stage} {name} per round: {rounds}")


# Callgrind's client requests, built on the spot: zero the counters before a round and dump
# them after it, so one valgrind process counts each round alone (start-up, imports and
# warm-up are left out, and the two policies share one process).
CALLGRIND_HELPER = """
#include <valgrind/callgrind.h>
void zero(void) { CALLGRIND_ZERO_STATS; }
void dump(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }
"""


def instructions(policy_names: list[str], root: str, workdir: Path, n: int) -> dict[str, float]:
    """Instructions per library request under callgrind, which a loaded machine does not
    move: ``n`` requests per policy between a zeroing and a dump of the counters (the writer
    thread's work included). Needs valgrind and a C compiler; takes a few minutes."""
    helper = workdir / "callgrind_helper.so"
    source = workdir / "callgrind_helper.c"
    source.write_text(CALLGRIND_HELPER)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", helper, source], check=True)
    out = workdir / "callgrind.out"
    argv = [sys.executable, __file__, "--count-rounds", str(n), root, str(workdir), str(helper)]
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv, *policy_names],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"callgrind run failed: {done.stderr[-2000:]}")
    counts: dict[str, float] = {}
    for dump in workdir.glob("callgrind.out.*"):
        text = dump.read_text(errors="replace")
        label = re.search(r"^desc: Trigger: Client Request: (.+)$", text, re.M)
        total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if label and total:
            counts[label.group(1)] = int(total.group(1)) / n
    return counts


def count_rounds(n: int, root: str, workdir: Path, helper: str, names: list[str]) -> None:
    """The process ``instructions`` runs under callgrind: one counted round per policy."""
    import ctypes

    from modelroute.records.writer import RecordWriter

    # Under callgrind everything is 50 times slower: a batch write could pass the writer's
    # 2 s timeout and spool, which is work the gateway does not do. Wait as long as it takes.
    RecordWriter.__init__.__kwdefaults__["write_timeout_s"] = 600.0
    counters = ctypes.CDLL(helper)
    for name in names:
        policy = load(name, root + "/v1", workdir)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(request_round(policy, workdir, n, 16, frozen=True, counters=counters))
        counters.dump(name.encode())


def main() -> None:
    if sys.argv[1:2] == ["--count-rounds"]:  # the process --instructions runs under callgrind
        n, root, workdir, helper, *names = sys.argv[2:]
        return count_rounds(int(n), root, Path(workdir), helper, names)
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20_000, help="calls per stage and round")
    parser.add_argument("--requests", type=int, default=3_200, help="requests per round")
    parser.add_argument("--conc", type=int, default=16)
    parser.add_argument("--gateway-seconds", type=int, default=4, help="per wrk point; 0: off")
    parser.add_argument("--no-upstream", action="store_true", help="in-process stages only")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions per library request"
    )
    parser.add_argument("--counted-requests", type=int, default=1600, help="per policy")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="policy-cost-"))
    upstream, root, gateways = None, "http://127.0.0.1:9", None
    counted: dict[str, float] = {}
    if not args.no_upstream:
        sys.path.insert(0, str(HARNESS))
        import bench as harness  # the shared harness: nginx upstream, wrk, process groups

        upstream = harness.Upstream(str(workdir), [0], 0, 1, "0", 0)
        upstream.start()
        root = upstream.root(0)
        os.sched_setaffinity(0, {1})  # as the gateway: CPU 1, the upstream on CPU 0
    samples: dict[tuple[str, str], list[float]] = {}
    try:
        policies = {name: load(name, root + "/v1", workdir) for name in POLICIES}
        if upstream is not None and args.gateway_seconds > 0:
            gateways = Gateways(harness, policies, workdir)
        calls = {name: stages(p, warm_stats(p)) for name, p in policies.items()}
        for name in POLICIES:  # warm-up
            for fn in calls[name].values():
                cpu_us(fn, args.calls // 4)
        for index in range(args.rounds):
            order = list(policies.items())
            for name, policy in order if index % 2 == 0 else order[::-1]:  # A B B A ...
                for stage, fn in calls[name].items():
                    samples.setdefault((stage, name), []).append(cpu_us(fn, args.calls))
                if upstream is not None:
                    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                        rounds = request_round(policy, workdir, args.requests, args.conc)
                        took = runner.run(rounds)
                    samples.setdefault(("request", name), []).append(took)
                for mode in ("json", "stream") if gateways is not None else ():
                    took = gateways.point(name, mode, args.conc, args.gateway_seconds)
                    samples.setdefault((f"gw {mode}", name), []).append(took)
        if gateways is not None:
            gateways.stop()
            gateways = None
        if args.instructions and upstream is not None:
            counted = instructions(list(POLICIES), root, workdir, args.counted_requests)
    finally:
        if gateways is not None:
            gateways.stop()
        if upstream is not None:
            upstream.stop()
    print(
        f"CPU time per call, median of {args.rounds} alternating rounds ({args.calls} calls "
        f"per stage; {args.requests} library requests and {args.gateway_seconds} s of wrk per "
        f"gateway point, at concurrency {args.conc})"
    )
    report(samples)
    if counted:
        one, real = counted["one-model"], counted["realistic"]
        print(
            f"instructions per library request (callgrind): one-model {one:,.0f}, realistic "
            f"{real:,.0f}, ratio {real / one:.3f}"
        )


if __name__ == "__main__":
    main()
