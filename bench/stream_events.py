"""What a streamed answer costs the gateway per event, beside pyref (the harness's bare aiohttp
proxy): the gateway's CPU per request for streams of few and of many events, and the slope
between them, the CPU each further event costs.

The shared harness's upstream always streams 5 events, where a real model streams one per
token or so: hundreds. So this benchmark runs its own nginx upstream (the harness's nginx
and Lua module, on CPU 0 with wrk) with one port per stream length: ``--events`` content
events (each a ``chat.completion.chunk`` of the harness's shape, " token" each), then the
usage chunk and ``[DONE]``. ``--gap-ms`` spaces the events, so that each arrives on its own
read as a model's tokens do; 0 writes the whole stream at once.

Targets, each alone on CPU 1 in turn, round by round: pyref, and modelroute as the harness
runs it (one-model bench policy, SQLite records, metrics, one worker) from this checkout,
and from ``--base`` trees when given (``name=path`` of another checkout, e.g. a ``git
worktree`` of the commit before a change), all on this checkout's venv.

    python3 bench/stream_events.py [--events 5,200] [--gap-ms 0] [--rounds 4] [--duration 5]
                                   [--conc 16] [--base before=/tmp/base]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HARNESS = Path(os.environ.get("HARNESS", ROOT.parent / "shared" / "bench" / "gateway"))
sys.path.insert(0, str(HARNESS))
import bench as harness  # noqa: E402  (the shared harness: wrk, process groups)

sys.path.insert(0, str(HERE))
from tree_ab import alternate, gateway_command, launch, pyref_command  # noqa: E402

# The stream for ``n`` events, built once per length: the harness's chunk shape.
LUA = r"""
local HEAD = '{"id":"chatcmpl-bench0000000000000000000000","object":"chat.completion.chunk",'
  .. '"created":1700000000,"model":"bench-upstream","system_fingerprint":"fp_bench","choices":'
local function chunk(delta, finish)
  return "data: " .. HEAD .. '[{"index":0,"delta":' .. delta .. ',"logprobs":null,"finish_reason":'
    .. finish .. '}]}\n\n'
end
local cache = {}
local function events(n)
  local found = cache[n]
  if found then return found end
  local list = { chunk('{"role":"assistant","content":""}', "null") }
  for _ = 1, n do list[#list + 1] = chunk('{"content":" token"}', "null") end
  list[#list + 1] = chunk('{}', '"stop"')
  list[#list + 1] = "data: " .. HEAD .. '[],"usage":{"prompt_tokens":12,"completion_tokens":'
    .. n .. ',"total_tokens":' .. (n + 12) .. '}}\n\n'
  list[#list + 1] = "data: [DONE]\n\n"
  cache[n] = list
  return list
end
return function()
  ngx.req.read_body()
  local list = events(tonumber(ngx.var.stream_events))
  local gap = tonumber(ngx.var.stream_gap_ms)
  ngx.header["Content-Type"] = "text/event-stream"
  if gap <= 0 then
    ngx.print(table.concat(list))
    return
  end
  for i = 1, #list do
    if i > 1 and i < #list - 1 then ngx.sleep(gap / 1000) end
    ngx.print(list[i])
    ngx.flush(true)
  end
end
"""

NGINX = """
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    tcp_nodelay on;
    postpone_output 0;
    client_body_buffer_size 1m;
    lua_package_path "{dir}/?.lua;;";
{servers}
}}
"""
SERVER = """
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        set $stream_events {events};
        set $stream_gap_ms {gap};
        location = /v1/chat/completions {{ content_by_lua_block {{ require("events")() }} }}
    }}
"""


class Upstream:
    """nginx on CPU 0, one port per stream length."""

    def __init__(self, workdir: Path, lengths: list[int], gap_ms: int) -> None:
        self.dir = workdir / "upstream"
        self.dir.mkdir()
        # nginx's workers run unprivileged: they must be able to read the Lua module.
        for folder in (workdir, self.dir):
            folder.chmod(0o755)
        self.ports = {n: harness.free_port() for n in lengths}
        (self.dir / "events.lua").write_text(LUA)
        servers = "".join(
            SERVER.format(port=port, events=n, gap=gap_ms) for n, port in self.ports.items()
        )
        (self.dir / "nginx.conf").write_text(NGINX.format(dir=self.dir, servers=servers))
        self.proc: Any = None

    def start(self) -> None:
        conf, prefix = shlex.quote(str(self.dir / "nginx.conf")), shlex.quote(str(self.dir))
        test = subprocess.run(
            ["nginx", "-t", "-c", str(self.dir / "nginx.conf"), "-p", str(self.dir)],
            capture_output=True,
            text=True,
        )
        if test.returncode != 0:
            raise SystemExit("nginx config test failed:\n" + test.stderr)
        self.proc = harness.start_group(
            f"exec nginx -c {conf} -p {prefix}", "0", {}, str(self.dir / "nginx.out")
        )
        for _ in range(100):
            if all(harness.port_open("127.0.0.1", p) for p in self.ports.values()):
                return
            harness.time.sleep(0.05)
        raise SystemExit("nginx did not start: " + (self.dir / "error.log").read_text())

    def base(self, n: int) -> str:
        return f"http://127.0.0.1:{self.ports[n]}/v1"

    def stop(self) -> None:
        if self.proc is not None:
            harness.stop_group(self.proc)


def start(name: str, src: Path | None, upstream: str, folder: Path) -> tuple[Any, str]:
    """pyref (``src`` None) or modelroute from the tree ``src``, in front of ``upstream``."""
    folder.mkdir()
    if src is None:
        return launch(name, folder, lambda port: pyref_command(upstream, port))
    policy = (HERE / "gateway" / "policy.yaml").read_text().replace("UPSTREAM_BASE", upstream)
    (folder / "policy.yaml").write_text(policy)
    return launch(name, folder, lambda port: gateway_command(src, folder, port))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="5,200", help="stream lengths (content events)")
    parser.add_argument("--gap-ms", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--conc", type=int, default=16)
    parser.add_argument("--base", action="append", default=[], help="name=path of another tree")
    args = parser.parse_args()
    lengths = sorted(int(n) for n in args.events.split(","))
    trees: dict[str, Path | None] = {"pyref": None}
    for spec in args.base:
        name, _, path = spec.partition("=")
        trees[name] = Path(path).resolve() / "src"
    trees["modelroute"] = ROOT / "src"
    workdir = Path(tempfile.mkdtemp(prefix="modelroute-stream-events-"))
    upstream = Upstream(workdir, lengths, args.gap_ms)
    upstream.start()
    body = workdir / "stream.json"
    body.write_bytes(harness.request_body("bench", True, True))
    cpu: dict[tuple[str, int], list[float]] = {}
    try:
        for n in lengths:
            gateways = {
                name: start(name, src, upstream.base(n), workdir / f"{name}-{n}")
                for name, src in trees.items()
            }
            measured = alternate(gateways, body, args.conc, args.duration, args.rounds, str(n), 30)
            for name, points in measured.items():
                cpu[(name, n)] = [p["cpu_us"] for p in points]
    finally:
        upstream.stop()
    report(cpu, trees, lengths, args)


def report(
    cpu: dict[tuple[str, int], list[float]],
    trees: dict[str, Path | None],
    lengths: list[int],
    args: argparse.Namespace,
) -> None:
    print(
        f"streams of {' and '.join(map(str, lengths))} content events (gap {args.gap_ms} ms), "
        f"concurrency {args.conc}, {args.rounds} alternating rounds of {args.duration} s, "
        "one core for each gateway; CPU us per request, median of the rounds (per round)"
    )
    low, high = lengths[0], lengths[-1]
    medians = {key: statistics.median(values) for key, values in cpu.items()}
    for name in trees:
        cells = "  ".join(
            f"{n} events {medians[(name, n)]:7.1f} "
            f"({medians[(name, n)] / medians[('pyref', n)]:.2f}x pyref) "
            f"{[round(v) for v in cpu[(name, n)]]}"
            for n in lengths
        )
        slope = (medians[(name, high)] - medians[(name, low)]) / (high - low)
        print(f"  {name:12} {cells}  each further event {slope:6.2f} us")


if __name__ == "__main__":
    main()
