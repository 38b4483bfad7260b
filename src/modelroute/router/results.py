"""What a routed request returns: a finished answer, or a stream already under way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from modelroute.planner import Decision
from modelroute.records.record import RequestRecord
from modelroute.types import Completion, StreamChunk


class ChatResult:
    """A finished, non-streamed request."""

    def __init__(
        self,
        completion: Completion,
        record: RequestRecord,
        decision: Decision,
        headers: dict[str, str],
    ) -> None:
        self.completion = completion
        self.record = record
        self.decision = decision
        self.headers = headers

    def to_openai(self) -> dict[str, Any]:
        return self.completion.body


class ChatStream:
    """A streamed request that has already produced its first output. Iterate for chunks;
    ``record`` is complete (and submitted) once iteration ends, however it ends."""

    def __init__(
        self,
        chunks: AsyncIterator[StreamChunk],
        record: RequestRecord,
        decision: Decision,
        headers: dict[str, str],
    ) -> None:
        self._chunks = chunks
        self.record = record
        self.decision = decision
        self.headers = headers

    def __aiter__(self) -> AsyncIterator[StreamChunk]:
        return self._chunks

    async def aclose(self) -> None:
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            await aclose()
