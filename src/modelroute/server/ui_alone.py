"""The dashboard without the gateway (``modelroute ui``): ``/ui`` and a health check, over a
record store that something else writes."""

from __future__ import annotations

from modelroute.server.asgi import Receive, Scope, Send, send_json
from modelroute.server.ui import DashboardUI


class DashboardAlone:
    """An ASGI app: ``/`` redirects to the dashboard, ``/healthz`` answers ok, everything
    else is the dashboard's (404 outside ``/ui``)."""

    def __init__(self, ui: DashboardUI) -> None:
        self.ui = ui

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] == "/healthz":
            await send_json(send, 200, {"status": "ok"})
        elif scope["path"] == "/":
            headers = [(b"location", f"{self.ui.prefix}/".encode()), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 303, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
        else:
            await self.ui(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.ui.start()
                except Exception as exc:  # an unreachable store: uvicorn prints it and exits
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.ui.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
