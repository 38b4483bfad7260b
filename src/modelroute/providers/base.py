"""The provider protocol: a transport that speaks one wire format.

A provider turns the canonical request (an OpenAI Chat Completions body) into its wire format,
sends it over a pooled connection, and turns the answer back into a ``Completion`` or a
sequence of ``StreamChunk``. It never decides anything: it raises ``UpstreamError`` with what it
saw, and ``failures.classify`` names the failure. Timeouts are the caller's (``asyncio.timeout``
around the call), so one deadline governs every attempt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from modelroute.policy.compiled import Model
from modelroute.types import Completion, StreamChunk


class Provider(Protocol):
    async def complete(self, model: Model, body: dict[str, Any], api_key: str | None) -> Completion:
        """Send a non-streamed request; return the answer or raise ``UpstreamError``."""
        ...

    def stream(
        self, model: Model, body: dict[str, Any], api_key: str | None
    ) -> AsyncIterator[StreamChunk]:
        """Send a streamed request; yield chunks; raise ``UpstreamError`` on failure, including
        a stream that ends without its terminator."""
        ...

    async def aclose(self) -> None: ...
