"""Gateway overhead with two policies and two state backends in one run of the shared harness.

The harness (../shared/bench/gateway, run its setup.sh once) takes one gateway under test per
run. This driver imports its modules from that folder at run time and registers modelroute
three times as a built-in target before calling the harness's own ``main``, so one run
measures, on the same upstream and CPU layout: direct (the upstream alone), modelroute with the
one-model policy (bench/gateway/policy.yaml), modelroute with the realistic policy (8 models,
7 routes, bench/gateway/policy-realistic.yaml), modelroute with the one-model policy and the
Redis state backend (``--state redis://127.0.0.1:6379/13``, that database flushed as the
target starts; REDIS_DB= picks another) and pyref (the bare aiohttp proxy). Every modelroute
target runs as bench/overhead.sh runs the one: records (SQLite), metrics and rolling stats
on. After the run it prints, from the maximum requests per second of each mode, each
target's ratio to pyref, realistic / one-model and Redis / in-process, and the latency goals'
figures (added p50 and p99 at concurrency 1, p99 against pyref's at concurrency 16); the same
lines are appended to the run's markdown file in bench/results.

    python3 bench/overhead_policies.py [harness flags, e.g. --duration 10 --warmup 3]
    PEERS=direct,modelroute,modelroute-realistic,modelroute-redis,pyref,litellm
        (the default without litellm)
    MODELROUTE_BIN="env PYTHONPATH=$PWD/src /path/to/.venv/bin/modelroute"  (see modelroute_bin.py)

Standard library only: it runs under the same python3 as the harness.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HARNESS = Path(os.environ.get("HARNESS", ROOT.parent / "shared" / "bench" / "gateway")).resolve()
sys.path.insert(0, str(HERE))
from modelroute_bin import missing, modelroute_bin  # noqa: E402

DEFAULT_PEERS = "direct,modelroute,modelroute-realistic,modelroute-redis,pyref"
# A database the test suite does not use (its URLs name 0 and 3); flushed as the target starts.
REDIS_DB = int(os.environ.get("REDIS_DB", "13"))
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}?prefix=mr-bench:"
# name: (policy file, what it is, extra serve flags, shell run before the gateway starts)
TARGETS = {
    "modelroute": ("policy.yaml", "one model, one route named by the request", "", ""),
    "modelroute-realistic": (
        "policy-realistic.yaml",
        "8 models, 7 routes; selected by match after 5 failing rules; "
        "cheapest_qualified over 5 models (3 rejected) + 2 fallbacks",
        "",
        "",
    ),
    "modelroute-redis": (
        "policy.yaml",
        f"one model, one route named by the request; state in Redis (db {REDIS_DB})",
        f"--state '{REDIS_URL}'",
        f"redis-cli -n {REDIS_DB} flushdb > /dev/null && ",
    ),
}


def serve_cmd(policy_file: str, flags: str = "", before: str = "") -> str:
    """The command overhead.sh uses, with the policy file (and state flags) as the difference."""
    source = HERE / "gateway" / policy_file
    return (
        f"{before}sed 's#UPSTREAM_BASE#{{upstream_base}}#' {source} > {{workdir}}/{policy_file} "
        f"&& exec {modelroute_bin()} serve {{workdir}}/{policy_file} "
        "--host 127.0.0.1 --port {port} --workers {gw_ncpus} "
        f"--store {{workdir}}/{policy_file}.db --spool-dir {{workdir}}/{policy_file}.spool"
        + (f" {flags}" if flags else "")
    )


def register(peers: Any) -> None:
    """Add the modelroute targets to the harness's built-in peers (in this process only)."""
    for name, (policy_file, note, flags, before) in TARGETS.items():
        peers.BUILTIN[name] = peers.Target(
            name=name,
            description=f"modelroute serve, {note}",
            cmd=serve_cmd(policy_file, flags, before),
            ready_timeout=60.0,
            available=missing,
            config_note=f"bench/gateway/{policy_file}: {note}; SQLite records, metrics on",
        )


def points(results: list[dict[str, Any]], target: str, mode: str) -> list[dict[str, Any]]:
    return [
        r
        for r in results
        if r.get("target") == target and r.get("mode") == mode and r.get("status") == "ok"
    ]


def max_rps(results: list[dict[str, Any]], target: str, mode: str) -> float | None:
    values = [r["rps"] for r in points(results, target, mode)]
    return max(values) if values else None


def at(results: list[dict[str, Any]], target: str, mode: str, conc: int) -> dict[str, Any] | None:
    return next((r for r in points(results, target, mode) if r.get("concurrency") == conc), None)


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.3f}" if a is not None and b else "-"


def throughput_lines(results: list[dict[str, Any]], modes: list[str]) -> list[str]:
    """Max RPS per target and mode, each against pyref, and the two modelroute comparisons."""
    lines = ["", "max RPS over the concurrencies (ratio to pyref):"]
    for mode in modes:
        pyref = max_rps(results, "pyref", mode)
        best = {name: max_rps(results, name, mode) for name in TARGETS}
        cells = [
            f"{name} {value:.0f} ({ratio(value, pyref)})"
            for name, value in best.items()
            if value is not None
        ]
        lines.append(f"  {mode}: " + ", ".join(cells) + f", pyref {pyref or 0:.0f}")
        one = best["modelroute"]
        lines.append(
            f"  {mode}: realistic / one-model {ratio(best['modelroute-realistic'], one)}, "
            f"redis / in-process {ratio(best['modelroute-redis'], one)}"
        )
    return lines


def latency_lines(results: list[dict[str, Any]], modes: list[str]) -> list[str]:
    """Added latency (target - direct) at concurrency 1 and the p99 against pyref's at 16."""
    lines = ["", "latency: added p50 / p99 at c=1 (ms, vs direct); c=16 p99 (ms, vs pyref)"]
    for mode in modes:
        pyref16 = at(results, "pyref", mode, 16)
        for name in (*TARGETS, "pyref"):
            one, sixteen = at(results, name, mode, 1), at(results, name, mode, 16)
            if one is None or sixteen is None:
                continue
            added = one.get("overhead_ms", {})
            p99 = sixteen["latency_ms"]["p99"]
            base = pyref16["latency_ms"]["p99"] if pyref16 else None
            lines.append(
                f"  {mode} {name}: added p50 {added.get('p50', float('nan')):.3f}, "
                f"p99 {added.get('p99', float('nan')):.3f}; c=16 p99 {p99:.3f} "
                f"({ratio(p99, base)})"
            )
    return lines


def summary(report: dict[str, Any]) -> list[str]:
    """The issue's throughput and latency figures for this run."""
    results = report.get("results", [])
    modes = report.get("meta", {}).get("args", {}).get("modes", ["json", "stream"])
    return throughput_lines(results, modes) + latency_lines(results, modes)


def main(argv: list[str]) -> int:
    if not (HARNESS / "bench.py").exists():
        sys.exit(f"harness not found at {HARNESS} (set HARNESS=...)")
    sys.path.insert(0, str(HARNESS))
    import bench  # the harness's driver
    import peers

    register(peers)
    out = HERE / "results"
    args = ["--peers", os.environ.get("PEERS", DEFAULT_PEERS), "--out", str(out), *argv]
    status: int = bench.main(args)
    latest = out / "latest.json"
    if latest.exists():
        report = json.loads(latest.read_text())
        lines = summary(report)
        print("\n".join(lines))
        run_md = out / f"{report.get('meta', {}).get('run_id')}.md"
        for path in (run_md, out / "latest.md"):
            if path.exists():
                with path.open("a") as f:
                    f.write("\n```text" + "\n".join(lines) + "\n```\n")
        failed = [
            t["name"]
            for t in report.get("targets", [])
            if t.get("name") in TARGETS and t.get("status") == "failed"
        ]
        if failed:
            print(f"failed to start: {', '.join(failed)}")
            return 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
