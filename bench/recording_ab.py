"""Gateway throughput with request records on (SQLite store, metrics) versus off (records kept
in memory only), measured side by side: the two configurations alternate in one run (A B A B)
on the shared harness's fixed upstream, one core for the gateway, so drift hits both alike.

    python3 bench/recording_ab.py [--rounds 2] [--duration 5] [--conc 16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HARNESS = ROOT.parent / "shared" / "bench" / "gateway" / "bench.py"
SERVE = (
    f"sed 's#UPSTREAM_BASE#{{upstream_base}}#' {HERE}/gateway/policy.yaml > "
    f"{{workdir}}/policy.yaml && exec {ROOT}/.venv/bin/modelroute serve "
    "{workdir}/policy.yaml --host 127.0.0.1 --port {port} --workers {gw_ncpus} "
)
CONFIGS = {
    "records-on": "--store {workdir}/records.db --spool-dir {workdir}/spool",
    "records-off": "--store none",
}


def run_once(name: str, extra: str, args: argparse.Namespace, out: Path) -> dict[str, float]:
    subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            "--gateway-name",
            name,
            "--gateway-cmd",
            SERVE + extra,
            "--peers",
            "direct",
            "--conc",
            str(args.conc),
            "--duration",
            str(args.duration),
            "--ttft-samples",
            "0",
            "--out",
            str(out),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    data = json.loads((out / "latest.json").read_text())
    return {f"{r['mode']}": r["rps"] for r in data["results"] if r["target"] == name}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--conc", type=int, default=16)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="modelroute-ab-"))
    rps: dict[str, dict[str, list[float]]] = {c: {"json": [], "stream": []} for c in CONFIGS}
    for _ in range(args.rounds):
        for name, extra in CONFIGS.items():
            for mode, value in run_once(name, extra, args, out).items():
                rps[name][mode].append(value)
    print(
        f"gateway RPS at concurrency {args.conc}, {args.rounds} alternating rounds of "
        f"{args.duration} s per mode (one core for the gateway)"
    )
    for mode in ("json", "stream"):
        on = statistics.median(rps["records-on"][mode])
        off = statistics.median(rps["records-off"][mode])
        print(
            f"  {mode:6} records on {on:7.0f}  off {off:7.0f}  on/off {on / off:.3f}  "
            f"(runs on {rps['records-on'][mode]}, off {rps['records-off'][mode]})"
        )


if __name__ == "__main__":
    main()
