"""Gateway throughput with request records on (SQLite store, metrics) versus off (records kept
in memory only), measured side by side: the two configurations alternate in one run (A B A B)
on the shared harness's fixed upstream (its nginx and wrk on CPU 0, the gateway alone on CPU 1),
so drift hits both alike.

Throughput alone would flatter a writer that falls behind: records pile up in its queue while
the requests go on. So after every records-on point the gateway's own metrics say how many
records were still waiting (queue and spool); a writer that keeps up leaves about one batch.

    python3 bench/recording_ab.py [--rounds 3] [--duration 5] [--conc 16] [--floor]
                                  [--policy one-model|realistic] [--pyref]

``--policy realistic`` runs both gateways on the realistic bench policy (8 models, 7 routes)
instead of the one-model one. ``--pyref`` adds the harness's bare aiohttp proxy to the
alternation and prints both configurations as ratios to it: with records off, what the
policy's routing alone leaves of pyref's throughput, and with them on, what the records take
on top (the hot-path issue's "realistic policy, records on, at least 0.9x pyref").

``--floor`` then runs ``bench/record_floor.py`` on the rows the records-on JSON gateway wrote
and prints SQLite's least cost of storing them (inserts alone, rows already encoded) as a
share of the records-off gateway's CPU per request measured in this run: the part of the
records-on/off gap no Python change can remove while each request is a row in SQLite on the
gateway's core.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The harness lives beside the checkout (../shared); from a worktree, name it with HARNESS.
HARNESS = Path(os.environ.get("HARNESS", ROOT.parent / "shared" / "bench" / "gateway"))
sys.path.insert(0, str(HARNESS))
import bench as harness  # noqa: E402  (the shared harness: upstream, wrk, process groups)

sys.path.insert(0, str(HERE))
import tree_ab  # noqa: E402
from modelroute_bin import modelroute_bin  # noqa: E402

CONFIGS = {
    "records-on": "--store {dir}/records.db --spool-dir {dir}/spool",
    "records-off": "--store none",
}
POLICIES = {"one-model": "policy.yaml", "realistic": "policy-realistic.yaml"}
PATH = "/v1/chat/completions"


def start_gateway(
    name: str, mode: str, upstream: str, workdir: Path, policy_file: str
) -> tuple[Any, str]:
    folder = workdir / f"{name}-{mode}"
    folder.mkdir()
    if name == "pyref":
        return tree_ab.launch(name, folder, lambda port: tree_ab.pyref_command(upstream, port))
    policy = (HERE / "gateway" / policy_file).read_text().replace("UPSTREAM_BASE", upstream)
    (folder / "policy.yaml").write_text(policy)
    flags = CONFIGS[name].format(dir=folder)
    serve = f"exec {modelroute_bin()} serve {folder}/policy.yaml --host 127.0.0.1"
    return tree_ab.launch(name, folder, lambda port: f"{serve} --port {port} --workers 1 {flags}")


def waiting_records(url: str) -> int:
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    names = ("modelroute_record_queue_depth ", "modelroute_record_spool_size ")
    return sum(int(float(line.split()[1])) for line in text.splitlines() if line.startswith(names))


def point(proc: Any, url: str, body: Path, args: argparse.Namespace, tag: str) -> dict[str, float]:
    measured = tree_ab.point(proc, url, body, args.conc, args.duration, tag)
    result = {"rps": measured["rps"], "cpu_ms": measured["cpu_us"] / 1000, "waiting": -1.0}
    if tag.startswith("records-on"):
        result["waiting"] = waiting_records(url)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--conc", type=int, default=16)
    parser.add_argument("--floor", action="store_true", help="also measure SQLite's least cost")
    parser.add_argument("--policy", choices=sorted(POLICIES), default="one-model")
    parser.add_argument("--pyref", action="store_true", help="alternate the bare proxy too")
    args = parser.parse_args()
    names = [*CONFIGS, "pyref"] if args.pyref else list(CONFIGS)
    workdir = Path(tempfile.mkdtemp(prefix="modelroute-ab-"))
    upstream = harness.Upstream(str(workdir), [0], 0, 1, "0", 0)
    upstream.start()
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        for mode in ("json", "stream"):
            body = workdir / f"{mode}.json"
            body.write_bytes(harness.request_body("bench", mode == "stream", True))
            gateways = {
                name: start_gateway(
                    name, mode, upstream.root(0) + "/v1", workdir, POLICIES[args.policy]
                )
                for name in names
            }
            try:
                for _proc, url in gateways.values():  # warm-up
                    harness.run_wrk(
                        url, PATH, {}, str(body), args.conc, 2, 1, "0", 10, str(workdir), "warm"
                    )
                for i in range(args.rounds):
                    for name, (proc, url) in gateways.items():
                        tag = f"{name}-{mode}-{i}"
                        results.setdefault((name, mode), []).append(
                            point(proc, url, body, args, tag)
                        )
            finally:
                for proc, _ in gateways.values():
                    harness.stop_group(proc)
    finally:
        upstream.stop()
    report(results, args)
    if args.floor:
        floor(workdir / "records-on-json" / "records.db", results)


def floor(store: Path, results: dict[tuple[str, str], list[dict[str, float]]]) -> None:
    python = os.environ.get("BENCH_PYTHON", str(ROOT / ".venv" / "bin" / "python"))
    cmd = [python, str(HERE / "record_floor.py"), "--from", str(store), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()
    print("\n".join("  " + line for line in out[:-1]))
    off_us = {
        mode: 1000 * statistics.median(p["cpu_ms"] for p in results[("records-off", mode)])
        for mode in ("json", "stream")
    }
    print(
        "  SQLite's inserts alone (rows of the JSON run), as a share of the records-off CPU per "
        "request in this run:"
    )
    for shape, us in json.loads(out[-1]).items():
        shares = "  ".join(f"{mode} {us / off:6.1%}" for mode, off in off_us.items())
        print(f"    {shape:30} {us:5.1f} us   {shares}")


def report(
    results: dict[tuple[str, str], list[dict[str, float]]], args: argparse.Namespace
) -> None:
    print(
        f"{args.policy} policy, gateway at concurrency {args.conc}, {args.rounds} alternating "
        f"rounds of {args.duration} s per configuration and mode, one core for the gateway"
    )
    for mode in ("json", "stream"):
        on, off = results[("records-on", mode)], results[("records-off", mode)]
        on_rps = statistics.median(p["rps"] for p in on)
        off_rps = statistics.median(p["rps"] for p in off)
        print(
            f"  {mode:6} RPS records on {on_rps:6.0f}  off {off_rps:6.0f}  on/off "
            f"{on_rps / off_rps:.3f}   CPU ms/request on "
            f"{statistics.median(p['cpu_ms'] for p in on):.3f}  off "
            f"{statistics.median(p['cpu_ms'] for p in off):.3f}"
        )
        print(
            f"         per round on {[round(p['rps']) for p in on]}  off "
            f"{[round(p['rps']) for p in off]}; records still waiting after each "
            f"records-on point: {[int(p['waiting']) for p in on]}"
        )
        if ("pyref", mode) in results:
            ref = results[("pyref", mode)]
            ref_rps = statistics.median(p["rps"] for p in ref)
            print(
                f"         pyref {ref_rps:6.0f} RPS (per round {[round(p['rps']) for p in ref]}, "
                f"CPU ms/request {statistics.median(p['cpu_ms'] for p in ref):.3f}): records on "
                f"{on_rps / ref_rps:.3f}x pyref, off {off_rps / ref_rps:.3f}x; by round on "
                f"{_ratios(on, ref)}  off {_ratios(off, ref)}"
            )


def _ratios(points: list[dict[str, float]], ref: list[dict[str, float]]) -> list[float]:
    """Each round's throughput over pyref's in the same round."""
    return [round(p["rps"] / r["rps"], 3) for p, r in zip(points, ref, strict=True)]


if __name__ == "__main__":
    main()
