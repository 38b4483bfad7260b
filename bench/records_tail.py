"""The latency tail that request records add: p50, p90 and p99 at concurrency 16 with records
on (SQLite store) and off (``--store none``), and with records on under variants of the
interpreter's settings, measured side by side on the shared harness's fixed upstream (its
nginx and wrk on CPU 0, each gateway alone on CPU 1), the configurations alternating round by
round.

The variants are applied by the launcher (``python -c``), not by the product: ``switch=S`` sets
``sys.setswitchinterval(S)`` before ``modelroute serve`` starts (how long a thread holding the
interpreter lock keeps it while another waits); ``gc=off`` disables the cyclic collector one
second after start-up; ``flush=S`` and ``batch=N`` change the record writer's defaults (how
long it gathers records before writing a batch, and the most it writes at once);
``flush_size=N`` how many records waiting start a batch before the interval is up.

    python3 bench/records_tail.py [--rounds 2] [--duration 6] [--variants switch=0.001,gc=off]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HARNESS = Path(os.environ.get("HARNESS", ROOT.parent / "shared" / "bench" / "gateway"))
sys.path.insert(0, str(HARNESS))
import bench as harness  # noqa: E402  (the shared harness: upstream, wrk, process groups)

PATH = "/v1/chat/completions"
PYTHON = ROOT / ".venv" / "bin" / "python"


def launcher(variant: str) -> str:
    """The Python statements run before ``modelroute serve`` for a variant."""
    steps = ["import sys"]
    for part in filter(None, variant.split("+")):
        name, _, value = part.partition("=")
        if name == "switch":
            steps.append(f"sys.setswitchinterval({float(value)!r})")
        elif name in ("flush", "batch", "flush_size"):
            field = {"flush": "flush_interval_s", "batch": "batch_size"}.get(name, name)
            number = float(value) if name == "flush" else int(value)
            steps.append(
                "from modelroute.records.writer import RecordWriter; "
                f"RecordWriter.__init__.__kwdefaults__[{field!r}] = {number!r}"
            )
        elif name == "gc" and value == "off":
            steps.append("import gc, threading; threading.Timer(1.0, gc.disable).start()")
        else:
            sys.exit(f"unknown variant {part!r}")
    return "; ".join([*steps, *MAIN])


# The launcher's last statements: run the CLI as ``modelroute``.
MAIN = ("from modelroute.cli import main", "sys.argv[0] = 'modelroute'", "main()")


def start(name: str, variant: str, store: str, policy: Path, workdir: Path) -> tuple[Any, str]:
    return serve(name, launcher(variant), store, policy, workdir)


def serve(name: str, code: str, store: str, policy: Path, workdir: Path) -> tuple[Any, str]:
    """``modelroute serve`` on CPU 1, started by ``python -c code`` (which ends in ``MAIN``)."""
    folder = workdir / name
    folder.mkdir()
    port = harness.free_port()
    cmd = (
        f"exec {PYTHON} -c {shlex.quote(code)} serve {policy} --host 127.0.0.1 --port {port} "
        f"--workers 1 --store {store} --spool-dir {folder}"
    )
    proc = harness.start_group(cmd, "1", {}, str(folder / "gateway.log"))
    while not harness.port_open("127.0.0.1", port):
        if proc.poll() is not None:
            sys.exit((folder / "gateway.log").read_text()[-2000:])
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}"


def warm_up(urls: list[str], workdir: Path, conc: int) -> Path:
    """The harness's JSON request body, written to ``workdir``; each gateway warmed up on it
    for 2 s. Returns the body's path."""
    body = workdir / "body.json"
    body.write_bytes(harness.request_body("bench", False, True))
    for url in urls:
        harness.run_wrk(url, PATH, {}, str(body), conc, 2, 1, "0", 10, str(workdir), "w")
    return body


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--conc", type=int, default=16)
    parser.add_argument("--variants", default="switch=0.001,gc=off")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="records-tail-"))
    upstream = harness.Upstream(str(workdir), [0], 0, 1, "0", 0)
    upstream.start()
    running: dict[str, tuple[Any, str]] = {}
    samples: dict[str, list[dict[str, float]]] = {}
    try:
        source = (HERE / "gateway" / "policy.yaml").read_text()
        policy = workdir / "policy.yaml"
        policy.write_text(source.replace("UPSTREAM_BASE", upstream.root(0) + "/v1"))
        configs = {"records on": ("", str(workdir / "on.db")), "records off": ("", "none")}
        for variant in filter(None, args.variants.split(",")):
            configs[f"records on, {variant}"] = (variant, str(workdir / f"{variant}.db"))
        for i, (name, (variant, store)) in enumerate(configs.items()):
            running[name] = start(f"gw{i}", variant, store, policy, workdir)
        body = warm_up([url for _, url in running.values()], workdir, args.conc)
        for index in range(args.rounds):
            order = list(running.items())
            for name, (proc, url) in order if index % 2 == 0 else order[::-1]:
                harness.wait_idle(proc.pid)
                tag = f"r{index}-{len(samples.get(name, []))}-{abs(hash(name))}"
                out = harness.run_wrk(
                    url, PATH, {}, str(body), args.conc, args.duration, 1, "0", 10,
                    str(workdir), tag,
                )  # fmt: skip
                if sum(out["errors"].values()):
                    sys.exit(f"{name}: {out['errors']}")
                pct = out["latency_us"]["percentiles"]
                samples.setdefault(name, []).append(
                    {
                        "rps": out["requests"] / (out["duration_us"] / 1e6),
                        "p50": pct["50"] / 1000,
                        "p90": pct["90"] / 1000,
                        "p99": pct["99"] / 1000,
                    }
                )
    finally:
        for proc, _ in running.values():
            harness.stop_group(proc)
        upstream.stop()
    print(
        f"one-model policy, concurrency {args.conc}, {args.rounds} alternating rounds of "
        f"{args.duration} s, one core for each gateway; medians over the rounds (ms)"
    )
    for name, points in samples.items():
        med = {k: statistics.median(p[k] for p in points) for k in ("rps", "p50", "p90", "p99")}
        per = ", ".join(f"{p['p99']:.1f}" for p in points)
        print(
            f"  {name:<28} RPS {med['rps']:6.0f}  p50 {med['p50']:5.2f}  p90 {med['p90']:5.2f}  "
            f"p99 {med['p99']:5.2f}   (p99 per round: {per})"
        )


if __name__ == "__main__":
    main()
