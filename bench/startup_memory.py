"""Gateway start-up time and memory per worker.

Starts ``modelroute serve`` on the overhead benchmark's one-model policy
(bench/gateway/policy.yaml, SQLite records, one worker: the command bench/overhead_policies.py
runs) K times and prints the medians of: seconds from launch until ``/healthz`` answers, the
worker's RSS (VmRSS in /proc/PID/status) then, and its RSS after N chat requests (with its
anonymous and file-backed parts). The upstream is the project's simulator unless
``--upstream`` names one (e.g. the shared harness's nginx). Standard library only; the
gateway runs under ``--python`` (by default the interpreter running this, e.g. the venv's).

``--breakdown`` then says where the memory goes, in a fresh interpreter that repeats serve's
start-up step by step: the RSS after each step (imports, building the app, the lifespan's
warm-up, one prompt counted), and tracemalloc's largest Python allocations by
package (memory held by extensions, e.g. the Rust tokenizer's tables, shows only in RSS).

    .venv/bin/python bench/startup_memory.py [--runs 5] [--requests 200] [--breakdown]
        [--upstream http://127.0.0.1:PORT/v1] [--python /path/to/python]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gateway_procs import SIMULATOR, free_port, wait_up  # noqa: E402

ROOT = HERE.parent
POLICY = HERE / "gateway" / "policy.yaml"
BODY = json.dumps(
    {
        "model": "bench",
        "messages": [
            {"role": "system", "content": "You answer support questions briefly."},
            {"role": "user", "content": "How do I reset my password on the mobile app?"},
        ],
    }
).encode()


def rss_mib(pid: int) -> dict[str, float]:
    """VmRSS, and its two parts: RssAnon (the process's own heap) and RssFile (pages of
    mapped files, shared with every process mapping the same file)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


@contextlib.contextmanager
def simulator(tmp: Path, python: str) -> Iterator[str]:
    """The project's simulator (OpenAI wire format), its /v1 base URL yielded."""
    port = free_port()
    (tmp / "sim.yaml").write_text(SIMULATOR.format(answer="ok"))
    sim = subprocess.Popen(
        [python, "-m", "modelroute", "simulator", "--config", str(tmp / "sim.yaml"),
         "--port", str(port), "--until-stdin-closes"],
        stdin=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_up(f"http://127.0.0.1:{port}/health")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        assert sim.stdin is not None
        sim.stdin.close()
        sim.wait(30)


def policy_for(tmp: Path, upstream: str, model_id: str | None) -> Path:
    """bench/gateway/policy.yaml with UPSTREAM_BASE replaced (as overhead_policies.py does),
    and the model id the simulator serves when it is the upstream."""
    text = POLICY.read_text().replace("UPSTREAM_BASE", upstream)
    if model_id is not None:
        text = text.replace("model_id: bench-upstream", f"model_id: {model_id}")
    path = tmp / "policy.yaml"
    path.write_text(text)
    return path


def post(base: str) -> None:
    request = urllib.request.Request(
        f"{base}/v1/chat/completions", BODY, {"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    if not body.get("choices"):
        raise RuntimeError(f"unexpected answer: {body}")


def one_run(tmp: Path, python: str, policy: Path, requests: int, run: int) -> dict[str, float]:
    """Launch serve, time /healthz, read its RSS, send ``requests`` requests, read it again."""
    port = free_port()
    work = tmp / f"run{run}"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    started = time.perf_counter()
    serve = subprocess.Popen(
        [python, "-m", "modelroute", "serve", str(policy), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--store", str(work / "records.db"),
         "--spool-dir", str(work / "spool")],
        stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                    break
            except OSError:
                if serve.poll() is not None:
                    raise RuntimeError("serve exited before answering") from None
                time.sleep(0.01)
        ready_s = time.perf_counter() - started
        start = rss_mib(serve.pid)
        for _ in range(requests):
            post(base)
        after = rss_mib(serve.pid)
        return {
            "ready_s": ready_s, "rss_start": start["VmRSS"], "rss_after": after["VmRSS"],
            "anon_after": after["RssAnon"], "file_after": after["RssFile"],
        }  # fmt: skip
    finally:
        serve.terminate()
        serve.wait(30)


# The breakdown runs in its own interpreter (the venv's), so that nothing imported here counts.
BREAKDOWN = r"""
import asyncio, gc, json, sys, time, tracemalloc
from pathlib import Path

trace = sys.argv[2] == "trace"
if trace:
    tracemalloc.start()
steps = []
t0 = time.perf_counter()

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

def step(name):
    steps.append((name, rss(), time.perf_counter() - t0, sorted(sys.modules)))

step("interpreter")
import click, orjson, uvicorn, uvloop, httptools
step("click, orjson, uvicorn, uvloop, httptools")
import modelroute.cli
step("modelroute.cli (the serve command)")
from modelroute.policy import load_policy
policy = load_policy(sys.argv[1])
step("the policy loaded")
from modelroute.serve import build_app
step("modelroute.serve")
import modelroute.server.app, modelroute.router, modelroute.records.writer
step("server, router, records modules")
app = build_app(policy, store_url=sys.argv[3], spool_dir=sys.argv[4], content="full",
                traces="off", quality_refresh_s=60.0)
step("build_app (router, record writer, store)")

async def lifespan():
    sent = []
    queue = asyncio.Queue()
    await queue.put({"type": "lifespan.startup"})
    async def receive():
        return await queue.get()
    async def send(message):
        sent.append(message)
    task = asyncio.ensure_future(app({"type": "lifespan"}, receive, send))
    while not sent:
        await asyncio.sleep(0.01)
    step("lifespan start-up (tokenizer, writer)")
    from modelroute.features import count_tokens
    count_tokens("How do I reset my password on the mobile app?")
    step("a prompt counted")
    await queue.put({"type": "lifespan.shutdown"})
    await task

asyncio.run(lifespan())
out = {"steps": [], "top": []}
seen = set()
for name, mib, seconds, modules in steps:
    new = [m for m in modules if m not in seen and "." not in m]
    seen.update(modules)
    out["steps"].append({"step": name, "rss": mib, "s": seconds, "new": new})
if trace:
    by_package = {}
    for stat in tracemalloc.take_snapshot().statistics("filename"):
        name = stat.traceback[0].filename
        parts = Path(name).parts
        key = name
        for marker in ("site-packages", "src", "lib"):
            if marker in parts:
                i = len(parts) - 1 - parts[::-1].index(marker)
                key = parts[i + 1] if i + 1 < len(parts) else name
                break
        by_package[key] = by_package.get(key, 0) + stat.size
    top = sorted(by_package.items(), key=lambda kv: -kv[1])[:15]
    out["top"] = [{"package": k, "mib": v / 2**20} for k, v in top]
print(json.dumps(out))
"""


def breakdown(tmp: Path, python: str, policy: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    results = {}
    for mode in ("rss", "trace"):
        work = tmp / f"breakdown-{mode}"
        work.mkdir()
        argv = [python, "-c", BREAKDOWN, str(policy), mode, str(work / "r.db"), str(work / "s")]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"breakdown failed:\n{done.stderr[-3000:]}")
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    print("\nRSS step by step (no tracemalloc): MiB, +delta, seconds since start, new packages")
    previous = 0.0
    for s in results["rss"]["steps"]:
        new = ", ".join(s["new"][:12]) + (" ..." if len(s["new"]) > 12 else "")
        print(f"  {s['rss']:7.1f} {s['rss'] - previous:+7.1f}  {s['s']:5.2f}s  {s['step']}: {new}")
        previous = s["rss"]
    print("\ntracemalloc: Python allocations alive after start-up, by package (MiB)")
    for row in results["trace"]["top"]:
        print(f"  {row['mib']:7.2f}  {row['package']}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="serve started this many times")
    parser.add_argument("--requests", type=int, default=200, help="chat requests per run")
    parser.add_argument("--upstream", help="an OpenAI-compatible base URL (default: simulator)")
    parser.add_argument("--python", default=str(Path(sys.executable)), help="the venv's python")
    parser.add_argument("--breakdown", action="store_true", help="where the memory goes")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelroute-startup-") as name:
        tmp = Path(name)
        with contextlib.ExitStack() as stack:
            upstream = args.upstream or stack.enter_context(simulator(tmp, args.python))
            policy = policy_for(tmp, upstream, None if args.upstream else "sim-v1")
            runs = []
            for run in range(args.runs):
                runs.append(one_run(tmp, args.python, policy, args.requests, run))
                r = runs[-1]
                print(
                    f"run {run + 1}: ready {r['ready_s']:.2f} s, RSS {r['rss_start']:.0f} MiB "
                    f"at start, {r['rss_after']:.0f} MiB after {args.requests} requests "
                    f"(anon {r['anon_after']:.0f}, file {r['file_after']:.0f})"
                )
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(
                f"median of {args.runs}: ready {med['ready_s']:.2f} s; RSS "
                f"{med['rss_start']:.0f} MiB at start, {med['rss_after']:.0f} MiB after "
                f"{args.requests} requests (anon {med['anon_after']:.0f}, file "
                f"{med['file_after']:.0f}; upstream: {upstream})"
            )
            if args.breakdown:
                breakdown(tmp, args.python, policy)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
