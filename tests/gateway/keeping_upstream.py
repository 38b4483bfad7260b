"""An upstream serving the Responses API that keeps its responses, as OpenAI's does: a request
naming a ``previous_response_id`` it keeps continues that conversation; one it does not is
its 400 ``previous_response_not_found``. Each answer says which user turn it answered
(``turn N``), counted over the whole conversation the upstream saw, so a test can tell an
id it resolved itself from a conversation sent whole. Plain requests only."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web


def _turns(items: list[dict[str, Any]]) -> int:
    return sum(1 for item in items if item.get("role") == "user")


class KeepingUpstream:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.kept: dict[str, list[dict[str, Any]]] = {}  # response id -> its conversation
        self._ids = itertools.count(1)
        self.url = ""

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[KeepingUpstream]:
        app = web.Application()
        app.router.add_post("/v1/responses", self._handle)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        try:
            yield self
        finally:
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.requests.append(body)
        if body.get("stream"):
            return _error(400, "streams are not served here", "stream", None)
        given = body["input"]
        items = [{"role": "user", "content": given}] if isinstance(given, str) else list(given)
        previous = body.get("previous_response_id")
        if previous is not None:
            if previous not in self.kept:
                message = f"Previous response with id '{previous}' not found."
                return _error(400, message, "previous_response_id", "previous_response_not_found")
            items = [*self.kept[previous], *items]
        response_id = f"resp_kept{next(self._ids)}"
        text = f"turn {_turns(items)}"
        message = {
            "type": "message", "id": f"msg_kept{response_id}", "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }  # fmt: skip
        store = body.get("store", True)
        if store:
            self.kept[response_id] = [*items, {"role": "assistant", "content": text}]
        response = {
            "id": response_id, "object": "response", "created_at": 1, "status": "completed",
            "model": body["model"], "output": [message], "store": store,
            "previous_response_id": previous, "parallel_tool_calls": True,
            "tool_choice": "auto", "tools": [], "error": None, "incomplete_details": None,
            "usage": {
                "input_tokens": 10, "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 2, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 12,
            },
        }  # fmt: skip
        return web.json_response(response, dumps=lambda v: orjson.dumps(v).decode())


def _error(status: int, message: str, param: str | None, code: str | None) -> web.Response:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return web.json_response({"error": error}, status=status)
