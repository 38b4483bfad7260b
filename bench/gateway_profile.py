"""Where a gateway's CPU goes per request, by part: py-spy samples of the gateway under load,
beside the same for pyref (the bare aiohttp proxy of the shared harness).

Each target runs alone on CPU 1 in front of the harness's nginx upstream (CPU 0), as
bench/overhead_policies.py runs them: ``modelroute serve`` with the one-model and the
realistic bench policies (SQLite records, metrics, rolling stats, one worker) and pyref. For
each target and mode (JSON, stream) wrk (CPU 0) drives concurrency ``--conc`` for
``--duration`` seconds while ``py-spy record --nonblocking`` (CPU 0) samples every thread of
the gateway. The gateway's CPU time over the point divided by the requests wrk counted is its
CPU per request, thread by thread (``/proc``: the record writer's SQLite thread is timed
whole); each of the main thread's samples is put in one part by its innermost frame that
belongs to one (below), and a part's share of the samples times the main thread's CPU per
request is what it costs a request. Time in C (uvloop, httptools, orjson) counts in the
Python frame that called it: uvloop's socket and callback work shows as the event loop's.

    python3 bench/gateway_profile.py [--duration 10] [--conc 16] [--rate 250]

Needs the harness's setup (nginx, wrk), py-spy in .venv, and the pyref venv of
``../shared/bench/gateway/setup.sh`` (``/tmp/bench-venvs/pyref``).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HARNESS = Path(os.environ.get("HARNESS", ROOT.parent / "shared" / "bench" / "gateway"))
sys.path.insert(0, str(HARNESS))
import bench as harness  # noqa: E402  (the shared harness: upstream, wrk, process groups)

sys.path.insert(0, str(HERE))
from modelroute_bin import modelroute_bin  # noqa: E402

PYSPY = ROOT / ".venv" / "bin" / "py-spy"
PYREF = Path(os.environ.get("PYREF_PYTHON", "/tmp/bench-venvs/pyref/bin/python"))
PATH = "/v1/chat/completions"
POLICIES = {"one-model": "policy.yaml", "realistic": "policy-realistic.yaml"}

# (part, pattern on a frame's file): the innermost frame that matches one decides the part.
PARTS: list[tuple[str, re.Pattern[str]]] = [
    ("records and stats on the request path", re.compile(r"modelroute/(recording|records|state)")),
    ("routing: features and planning", re.compile(r"modelroute/(planner|features|policy|o200k)")),
    ("upstream HTTP client", re.compile(r"modelroute/providers/")),
    ("engine (attempts, deadlines, stream relay)", re.compile(r"modelroute/engine/")),
    ("router and cache", re.compile(r"modelroute/(router|cache|sessions)/")),
    ("front door (ASGI app, bodies, SSE)", re.compile(r"modelroute/server/")),
    ("HTTP server (uvicorn, httptools)", re.compile(r"(^|/)(uvicorn|httptools)/")),
    ("pyref: its handler", re.compile(r"pyref_gateway\.py")),
    ("pyref: aiohttp client", re.compile(r"aiohttp/(client|connector|streams)")),
    ("pyref: aiohttp server", re.compile(r"aiohttp/(web|http_|base_protocol)")),
    ("metrics (prometheus_client)", re.compile(r"(^|/)prometheus_client/")),
    ("event loop (uvloop, asyncio; sockets)", re.compile(r"(^|/)(asyncio|uvloop)/")),
]
OTHER = "other (logging, collector, interpreter)"
_FRAME = re.compile(r"\((?P<file>[^:()]+)(?::\d+)?\)$")


def part_of(stack: str) -> str:
    """The part of a collapsed stack (``frame;frame;...``, outermost first)."""
    frames = stack.split(";")
    for frame in reversed(frames):
        found = _FRAME.search(frame)
        if found is None:
            continue
        for name, pattern in PARTS:
            if pattern.search(found["file"]):
                return name
    return OTHER


def summarise(raw: Path) -> Counter[str]:
    """The main thread's samples by part (the other threads are timed whole, ``threads``)."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack.startswith("thread (") and "MainThread" in stack.split(";", 1)[0]:
            counts[part_of(stack)] += int(count)
    return counts


def threads(pid: int) -> Counter[str]:
    """CPU seconds of ``pid``'s main thread ("main") and of its other threads ("other": in
    the gateway under this load, the record writer's SQLite thread; Python does not name
    threads for the system, so they cannot be told apart here)."""
    out: Counter[str] = Counter()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        out["main" if tid == str(pid) else "other"] += seconds
    return out


def start(name: str, cmd: str, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    proc = harness.start_group(cmd, "1", {}, str(workdir / f"{name}.log"))
    while not harness.port_open("127.0.0.1", port):
        if proc.poll() is not None:
            sys.exit((workdir / f"{name}.log").read_text()[-2000:])
    return proc


def targets(upstream: str, workdir: Path) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    port = harness.free_port()
    out["pyref"] = (
        f"exec {PYREF} {HARNESS / 'examples' / 'pyref_gateway.py'} --port {port} "
        f"--route bench={upstream}",
        port,
    )
    for name, file in POLICIES.items():
        text = (HERE / "gateway" / file).read_text().replace("UPSTREAM_BASE", upstream)
        policy = workdir / file
        policy.write_text(text)
        port = harness.free_port()
        folder = workdir / name
        folder.mkdir()
        out[name] = (
            f"exec {modelroute_bin()} serve {policy} --host 127.0.0.1 --port {port} "
            f"--workers 1 --store {folder / 'records.db'} --spool-dir {folder}",
            port,
        )
    return out


def point(
    proc: subprocess.Popen[bytes], url: str, body: Path, args: argparse.Namespace,
    workdir: Path, tag: str,
) -> tuple[dict[str, float], Counter[str]]:  # fmt: skip
    """CPU microseconds per request of each thread over one wrk point, and the main
    thread's samples by part."""
    raw = workdir / f"{tag}.raw"
    spy = [
        "taskset", "-c", "0", str(PYSPY), "record", "--pid", str(proc.pid), "--rate",
        str(args.rate), "--duration", str(args.duration), "--format", "raw", "--nonblocking",
        "--threads", "--output", str(raw),
    ]  # fmt: skip
    before = threads(proc.pid)
    sampler = threading.Thread(
        target=subprocess.run, args=(spy,), kwargs={"capture_output": True}, daemon=True
    )
    sampler.start()
    out = harness.run_wrk(
        url, PATH, {}, str(body), args.conc, args.duration, 1, "0", 10, str(workdir), tag
    )
    after = threads(proc.pid)
    sampler.join()
    if sum(out["errors"].values()) or not raw.exists():
        sys.exit(f"{tag}: {out.get('errors')} (py-spy output: {raw.exists()})")
    per_thread = {k: (after[k] - before[k]) / out["requests"] * 1e6 for k in after}
    return per_thread, summarise(raw)


def report(name: str, mode: str, per_thread: dict[str, float], counts: Counter[str]) -> None:
    total, main_us = sum(counts.values()), per_thread.get("main", 0.0)
    print(
        f"\n{name} {mode}: {sum(per_thread.values()):.0f} us of CPU per request; "
        f"main thread {main_us:.0f} us ({total} samples)"
    )
    for part, n in counts.most_common():
        print(f"  {part:<44} {100 * n / total:5.1f}%  {main_us * n / total:6.1f} us")
    if per_thread.get("other", 0.0) >= 0.5:
        print(f"  {'other threads (the record writer)':<44}         {per_thread['other']:6.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--conc", type=int, default=16)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="gateway-profile-"))
    upstream = harness.Upstream(str(workdir), [0], 0, 1, "0", 0)
    upstream.start()
    running: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    try:
        for name, (cmd, port) in targets(upstream.root(0) + "/v1", workdir).items():
            running[name] = (start(name, cmd, workdir, port), f"http://127.0.0.1:{port}")
        for mode, stream in (("json", False), ("stream", True)):
            body = workdir / f"{mode}.json"
            body.write_bytes(harness.request_body("bench", stream, True))
            for name, (proc, url) in running.items():
                harness.run_wrk(url, PATH, {}, str(body), args.conc, 2, 1, "0", 10,
                                str(workdir), "warm")  # fmt: skip
                harness.wait_idle(proc.pid)
                per_thread, counts = point(proc, url, body, args, workdir, f"{name}-{mode}")
                report(name, mode, per_thread, counts)
    finally:
        for proc, _ in running.values():
            harness.stop_group(proc)
        upstream.stop()


if __name__ == "__main__":
    main()
