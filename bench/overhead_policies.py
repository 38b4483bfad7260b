"""Gateway overhead with two policies in one run of the shared harness.

The harness (../shared/bench/gateway, run its setup.sh once) takes one gateway under test per
run. This driver imports its modules from that folder at run time and registers modelroute
twice as a built-in target before calling the harness's own ``main``, so one run measures, on
the same upstream and CPU layout: direct (the upstream alone), modelroute with the one-model
policy (bench/gateway/policy.yaml), modelroute with the realistic policy (8 models, 7 routes,
bench/gateway/policy-realistic.yaml) and pyref (the bare aiohttp proxy). Both modelroute
targets run exactly as bench/overhead.sh runs the one: records (SQLite), metrics and rolling
stats on. After the run it prints the realistic/one-model throughput ratios.

    python3 bench/overhead_policies.py [harness flags, e.g. --duration 10 --warmup 3]
    PEERS=direct,modelroute,modelroute-realistic,pyref,litellm  (the default without litellm)

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
DEFAULT_PEERS = "direct,modelroute,modelroute-realistic,pyref"
POLICIES = {
    "modelroute": ("policy.yaml", "one model, one route named by the request"),
    "modelroute-realistic": (
        "policy-realistic.yaml",
        "8 models, 7 routes; selected by match after 5 failing rules; "
        "cheapest_qualified over 5 models (3 rejected) + 2 fallbacks",
    ),
}


def serve_cmd(policy_file: str) -> str:
    """The command overhead.sh uses, with the policy file as the only difference."""
    source = HERE / "gateway" / policy_file
    return (
        f"sed 's#UPSTREAM_BASE#{{upstream_base}}#' {source} > {{workdir}}/{policy_file} "
        f"&& exec {ROOT}/.venv/bin/modelroute serve {{workdir}}/{policy_file} "
        "--host 127.0.0.1 --port {port} --workers {gw_ncpus} "
        f"--store {{workdir}}/{policy_file}.db --spool-dir {{workdir}}/{policy_file}.spool"
    )


def register(peers: Any) -> None:
    """Add the modelroute targets to the harness's built-in peers (in this process only)."""
    for name, (policy_file, note) in POLICIES.items():
        peers.BUILTIN[name] = peers.Target(
            name=name,
            description=f"modelroute serve, {note}",
            cmd=serve_cmd(policy_file),
            ready_timeout=60.0,
            available=lambda: None if (ROOT / ".venv/bin/modelroute").exists() else "no .venv",
            config_note=f"bench/gateway/{policy_file}: {note}; SQLite records, metrics on",
        )


def max_rps(results: list[dict[str, Any]], target: str, mode: str) -> float | None:
    values = [
        r["rps"]
        for r in results
        if r.get("target") == target and r.get("mode") == mode and r.get("status") == "ok"
    ]
    return max(values) if values else None


def summary(report: dict[str, Any]) -> list[str]:
    """Realistic vs one-model (and vs pyref) at the maximum throughput of each mode."""
    results = report.get("results", [])
    lines = ["", "realistic policy vs one-model policy (max RPS over the concurrencies):"]
    for mode in report.get("meta", {}).get("args", {}).get("modes", ["json", "stream"]):
        one = max_rps(results, "modelroute", mode)
        real = max_rps(results, "modelroute-realistic", mode)
        pyref = max_rps(results, "pyref", mode)
        if one is None or real is None:
            lines.append(f"  {mode}: not measured")
            continue
        text = f"  {mode}: one-model {one:.0f}, realistic {real:.0f}, ratio {real / one:.3f}"
        if pyref:
            text += f"; vs pyref {one / pyref:.2f}x and {real / pyref:.2f}x"
        lines.append(text)
    return lines


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
        print("\n".join(summary(report)))
        failed = [
            t["name"]
            for t in report.get("targets", [])
            if t.get("name") in POLICIES and t.get("status") == "failed"
        ]
        if failed:
            print(f"failed to start: {', '.join(failed)}")
            return 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
