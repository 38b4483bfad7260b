"""A load process: ``python load.py BASE_URL STOP_FILE CONCURRENCY [API_KEY]`` sends chat
requests until STOP_FILE exists, then prints one JSON line: the count per status and the
policy hash of every answer (from /readyz-independent x-modelroute-request-id lookups is not
needed: the records say it)."""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from pathlib import Path

import httpx


def main() -> None:
    base, stop, concurrency = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    key = sys.argv[4] if len(sys.argv) > 4 else "load"
    statuses: Counter[str] = Counter()
    ids: list[str] = []
    lock = threading.Lock()
    body = {"model": "chat", "messages": [{"role": "user", "content": "hello there"}]}

    def worker(n: int) -> None:
        with httpx.Client(timeout=60, headers={"authorization": f"Bearer {key}"}) as client:
            i = 0
            while not stop.exists():
                stream = (i + n) % 3 == 0
                try:
                    if stream:
                        with client.stream(
                            "POST", f"{base}/v1/chat/completions", json={**body, "stream": True}
                        ) as r:
                            text = "".join(r.iter_text())
                            ok = r.status_code == 200 and "[DONE]" in text
                            status = str(r.status_code) if ok else f"{r.status_code}-cut"
                            rid = r.headers.get("x-modelroute-request-id", "")
                    else:
                        r = client.post(f"{base}/v1/chat/completions", json=body)
                        status, rid = (
                            str(r.status_code),
                            r.headers.get("x-modelroute-request-id", ""),
                        )
                except httpx.HTTPError as exc:
                    status, rid = type(exc).__name__, ""
                with lock:
                    statuses[status] += 1
                    ids.append(rid)
                i += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    for t in threads:
        t.start()
    print("started", flush=True)
    for t in threads:
        t.join()
    print(json.dumps({"statuses": statuses, "ids": ids}), flush=True)


if __name__ == "__main__":
    main()
