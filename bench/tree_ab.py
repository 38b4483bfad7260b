"""Two versions of the code as gateways side by side: this checkout's ``src/`` against another
tree's (``--base``, e.g. a ``git worktree`` of the commit before a change), alternating round
by round (A B A B) on the shared harness's fixed upstream, each gateway alone on CPU 1 (nginx
and wrk on CPU 0), so the machine's drift hits both alike. Both run as the harness runs
modelroute: the bench policy, SQLite records, metrics and rolling statistics on, one worker,
this checkout's venv.

    git worktree add /tmp/base HEAD~1
    python3 bench/tree_ab.py --base /tmp/base [--rounds 6] [--duration 5] [--conc 16]
                             [--modes json,stream] [--policy one-model|realistic]

Prints, per mode, each gateway's median requests/s and CPU per request (its process group's
CPU time over the point over the requests wrk counted), the ratios of this tree to the base,
and the per-round figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HARNESS = Path(os.environ.get("HARNESS", ROOT.parent / "shared" / "bench" / "gateway"))
sys.path.insert(0, str(HARNESS))
import bench as harness  # noqa: E402  (the shared harness: upstream, wrk, process groups)

POLICIES = {"one-model": "policy.yaml", "realistic": "policy-realistic.yaml"}
PATH = "/v1/chat/completions"
VENV_BIN = ROOT / ".venv" / "bin" / "modelroute"
PYREF = Path(os.environ.get("PYREF_PYTHON", "/tmp/bench-venvs/pyref/bin/python"))


def gateway_command(src: Path, folder: Path, port: int) -> str:
    """modelroute from the tree ``src`` as the harness runs it (SQLite records, one worker)."""
    return (
        f"exec env PYTHONPATH={src} {VENV_BIN} serve {folder}/policy.yaml --host 127.0.0.1 "
        f"--port {port} --workers 1 --store {folder}/records.db --spool-dir {folder}/spool"
    )


def pyref_command(upstream: str, port: int) -> str:
    """The harness's bare aiohttp proxy, routing the model "bench" to ``upstream``."""
    script = HARNESS / "examples" / "pyref_gateway.py"
    return f"exec {PYREF} {script} --port {port} --route bench={upstream}"


def launch(name: str, folder: Path, command: Callable[[int], str]) -> tuple[Any, str]:
    """Start ``command(port)`` alone on CPU 1 and wait for its port: (process, base URL)."""
    port = harness.free_port()
    proc = harness.start_group(command(port), "1", {}, str(folder / "gateway.log"))
    for _ in range(400):
        if harness.port_open("127.0.0.1", port):
            return proc, f"http://127.0.0.1:{port}"
        harness.time.sleep(0.05)
    raise SystemExit(f"{name} did not start: {(folder / 'gateway.log').read_text()[-2000:]}")


def start(name: str, src: Path, policy: str, folder: Path) -> tuple[Any, str]:
    folder.mkdir()
    (folder / "policy.yaml").write_text(policy)
    return launch(name, folder, lambda port: gateway_command(src, folder, port))


def point(
    proc: Any, url: str, body: Path, conc: int, duration: float, tag: str, timeout_s: int = 10
) -> dict[str, float]:
    """One wrk point after the gateway is idle: requests/s, and the CPU microseconds per
    request of its process group."""
    harness.wait_idle(proc.pid)
    cpu0 = harness.group_cpu_and_rss(proc.pid)[0]
    out = harness.run_wrk(
        url, PATH, {}, str(body), conc, duration, 1, "0", timeout_s, str(body.parent), tag
    )
    cpu = harness.group_cpu_and_rss(proc.pid)[0] - cpu0
    n, errors = out["requests"], sum(out["errors"].values())
    if errors or not n:
        raise SystemExit(f"{tag}: {errors} errors, {n} requests")
    return {"rps": n / (out["duration_us"] / 1e6), "cpu_us": 1e6 * cpu / n}


def alternate(
    gateways: dict[str, tuple[Any, str]],
    body: Path,
    conc: int,
    duration: float,
    rounds: int,
    label: str,
    timeout_s: int = 10,
) -> dict[str, list[dict[str, float]]]:
    """Each gateway warmed up, then measured round by round, the order flipping every round
    so that none always runs first; every gateway is stopped at the end."""
    results: dict[str, list[dict[str, float]]] = {name: [] for name in gateways}
    try:
        for _proc, url in gateways.values():
            harness.run_wrk(
                url, PATH, {}, str(body), conc, 2, 1, "0", timeout_s, str(body.parent), "warm"
            )
        for i in range(rounds):
            for name, (proc, url) in list(gateways.items())[:: 1 if i % 2 == 0 else -1]:
                tag = f"{name}-{label}-{i}"
                results[name].append(point(proc, url, body, conc, duration, tag, timeout_s))
    finally:
        for proc, _ in gateways.values():
            harness.stop_group(proc)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the other tree (its src/)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--conc", type=int, default=16)
    parser.add_argument("--modes", default="json,stream")
    parser.add_argument("--policy", choices=sorted(POLICIES), default="one-model")
    args = parser.parse_args()
    trees = {"base": args.base.resolve() / "src", "this": ROOT / "src"}
    workdir = Path(tempfile.mkdtemp(prefix="modelroute-tree-ab-"))
    upstream = harness.Upstream(str(workdir), [0], 0, 1, "0", 0)
    upstream.start()
    policy = (HERE / "gateway" / POLICIES[args.policy]).read_text()
    policy = policy.replace("UPSTREAM_BASE", upstream.root(0) + "/v1")
    print(
        f"{args.policy} policy, concurrency {args.conc}, {args.rounds} alternating rounds of "
        f"{args.duration} s, one core for each gateway; base {args.base}"
    )
    try:
        for mode in args.modes.split(","):
            body = workdir / f"{mode}.json"
            body.write_bytes(harness.request_body("bench", mode == "stream", True))
            gateways = {
                name: start(name, src, policy, workdir / f"{name}-{mode}")
                for name, src in trees.items()
            }
            results = alternate(gateways, body, args.conc, args.duration, args.rounds, mode)
            report(mode, results)
    finally:
        upstream.stop()


def report(mode: str, results: dict[str, list[dict[str, float]]]) -> None:
    medians = {
        name: {key: statistics.median(p[key] for p in points) for key in ("rps", "cpu_us")}
        for name, points in results.items()
    }
    base, this = medians["base"], medians["this"]
    print(
        f"  {mode:6} RPS base {base['rps']:6.0f}  this {this['rps']:6.0f}  this/base "
        f"{this['rps'] / base['rps']:.3f}   CPU us/request base {base['cpu_us']:6.1f}  this "
        f"{this['cpu_us']:6.1f}  ({this['cpu_us'] - base['cpu_us']:+.1f})"
    )
    for name, points in results.items():
        print(
            f"         {name:4} RPS per round {[round(p['rps']) for p in points]}  CPU us "
            f"{[round(p['cpu_us'], 1) for p in points]}"
        )


if __name__ == "__main__":
    main()
