"""A load process for the replica tests: requests spread round-robin over several gateways
with the official ``openai`` SDK, at a given concurrency, half of them streamed if asked.
Prints one JSON object per line, one per request: base, status, request id, streamed.

    python load.py CONFIG.json     (bases, route, requests, concurrency, stream_share,
                                    max_tokens, key)
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import openai


async def one(
    client: openai.AsyncOpenAI, base: str, cfg: dict[str, Any], stream: bool
) -> dict[str, Any]:
    messages = [{"role": "user", "content": "Tell me something careful."}]
    extra: dict[str, Any] = {"max_tokens": cfg.get("max_tokens", 20)}
    try:
        if stream:
            raw = await client.chat.completions.with_raw_response.create(
                model=cfg["route"],
                messages=messages,
                stream=True,  # type: ignore[arg-type]
                stream_options={"include_usage": True},
                **extra,
            )
            async for _ in raw.parse():
                pass
        else:
            raw = await client.chat.completions.with_raw_response.create(
                model=cfg["route"],
                messages=messages,
                **extra,  # type: ignore[arg-type]
            )
            raw.parse()
        rid = raw.headers.get("x-modelroute-request-id")
        return {"base": base, "status": 200, "request_id": rid, "stream": stream}
    except openai.APIStatusError as exc:
        rid = exc.response.headers.get("x-modelroute-request-id")
        return {
            "base": base,
            "status": exc.status_code,
            "request_id": rid,
            "stream": stream,
            "error": exc.body,
        }
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        return {
            "base": base,
            "status": 0,
            "request_id": None,
            "stream": stream,
            "error": type(exc).__name__,
        }


async def main(cfg: dict[str, Any]) -> None:
    clients = {
        b: openai.AsyncOpenAI(
            base_url=f"{b}/v1",
            api_key=cfg.get("key", "sk-load"),
            max_retries=0,
            timeout=30,
            # a new connection per request: the workers of one gateway share its socket, and
            # kept-alive connections would all stay with the worker that accepted them
            default_headers={"connection": "close"} if cfg.get("fresh_connections") else None,
        )
        for b in cfg["bases"]
    }
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(cfg["requests"]):
        queue.put_nowait(i)
    share = cfg.get("stream_share", 0.0)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            base = cfg["bases"][i % len(cfg["bases"])]
            stream = share > 0 and (i % round(1 / share) == 0)
            result = await one(clients[base], base, cfg, stream)
            print(json.dumps(result), flush=True)
            if cfg.get("pause_s"):
                await asyncio.sleep(cfg["pause_s"])

    await asyncio.gather(*(worker() for _ in range(cfg["concurrency"])))


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
