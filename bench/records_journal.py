"""What ``--records-durable`` adds to the request path: the journal's append (serialise the
record, one ``write`` to the page cache) beside the whole request through the router.

Records are the router's own: the quickstart policy over ``ScriptedProvider`` (no network),
each request planned, answered and recorded as the gateway does. The script measures, in one
run and alternating rounds:

- ``router.chat`` per request with a ``RecordWriter`` (SQLite) in memory-queue mode, then with
  ``durable=True`` (the journal on a temporary directory): CPU time of this process per request;
- ``Journal.append`` alone on the same records: CPU per append.

    PYTHONPATH=src python bench/records_journal.py [--requests 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from modelroute.records.journal import Journal
from modelroute.records.record import MemorySink, RequestRecord
from modelroute.records.stores.sqlite import SqliteStore
from modelroute.records.writer import RecordWriter
from modelroute.router import Router
from modelroute.testing import ScriptedProvider

POLICY = Path(__file__).resolve().parent.parent / "examples" / "quickstart.yaml"
BODY = {
    "model": "chat",
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
}


async def chat_cpu(requests: int, durable: bool) -> float:
    """CPU seconds of this process per request, the writer draining to SQLite meanwhile."""
    with tempfile.TemporaryDirectory(prefix="mr-journal-bench-") as tmp:
        writer = RecordWriter(SqliteStore(f"{tmp}/r.db"), f"{tmp}/spool", durable=durable)
        router = Router.from_file(
            POLICY, providers={"simulator": ScriptedProvider({})}, sink=writer
        )
        await router.start()
        for _ in range(200):  # warm up
            await router.chat(dict(BODY))
        start = time.process_time()
        for _ in range(requests):
            await router.chat(dict(BODY))
        spent = time.process_time() - start
        await router.aclose()
    return spent / requests


async def records(n: int) -> list[RequestRecord]:
    sink = MemorySink(n)
    router = Router.from_file(POLICY, providers={"simulator": ScriptedProvider({})}, sink=sink)
    await router.start()
    for _ in range(n):
        await router.chat(dict(BODY))
    await router.aclose()
    return list(sink.records)


def append_cpu(recs: list[RequestRecord]) -> float:
    with tempfile.TemporaryDirectory(prefix="mr-journal-bench-") as tmp:
        journal = Journal(Path(tmp))
        journal.open()
        start = time.process_time()
        for r in recs:
            journal.append(r)
        spent = time.process_time() - start
        journal.handled(len(recs))
        journal.close()
    return spent / len(recs)


async def main(requests: int, rounds: int) -> None:
    print(f"python {platform.python_version()} on {platform.machine()}; {requests} requests a "
          f"cell, {rounds} rounds; quickstart policy over ScriptedProvider")  # fmt: skip
    plain, durable, appends = [], [], []
    recs = await records(min(requests, 5000))
    for r in range(rounds):
        order = (False, True) if r % 2 == 0 else (True, False)
        for mode in order:
            (durable if mode else plain).append(await chat_cpu(requests, mode))
        appends.append(append_cpu(recs))
        print(f"round {r}: chat {plain[-1] * 1e6:7.1f} us/req  durable {durable[-1] * 1e6:7.1f} "
              f"us/req  append alone {appends[-1] * 1e6:5.1f} us/record")  # fmt: skip
    p, d, a = (statistics.median(x) * 1e6 for x in (plain, durable, appends))
    print(
        f"median: chat {p:.1f} us/req, durable {d:.1f} us/req (+{d - p:.1f} us, "
        f"{(d / p - 1) * 100:+.1f}%); journal append alone {a:.1f} us/record"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
    sys.exit(0)
