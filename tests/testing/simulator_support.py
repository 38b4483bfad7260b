"""Shared parts of the upstream simulator tests: its configuration, request bodies for both
wire formats, and an SSE reader.

Latencies are a few milliseconds so the tests stay fast; timing tests use their own slower
model (``paced``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FRANCE = "Paris is the capital of France."
UNSURE = "I am not sure about that one."
WEATHER_ARGS = {"city": "Paris", "unit": "C"}
TEN_WORDS = "one two three four five six seven eight nine ten"

CONFIG: dict[str, Any] = {
    "seed": 7,
    "models": {
        "small": {
            "reported_model": "small-2024-08-06",
            "system_fingerprint": "fp_small_1",
            "latency_ms": {"p50": 1, "p95": 3},
            "ttft_ms": {"p50": 1, "p95": 2},
            "tokens_per_second": 5000,
            "context_window": 200,
            "retry_after_s": 2,
            "answers": [
                {"match": "capital of France", "content": FRANCE, "logprob": -0.05},
                {
                    "match": "weather",
                    "tool_call": {"name": "get_weather", "arguments": WEATHER_ARGS},
                },
                {"match": "22", "content": "It is 22 degrees in Paris."},
                {"match": "unsure", "content": UNSURE, "logprob": -1.6},
            ],
            "default_answer": "Hello from the simulator.",
        },
        "paced": {
            "latency_ms": {"p50": 80},
            "ttft_ms": {"p50": 5},
            "tokens_per_second": 100,
            "default_answer": TEN_WORDS,
        },
    },
}

OPENAI_TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
ANTHROPIC_TOOLS: Any = [
    {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


def oa_body(text: str = "hi", model: str = "small", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def an_body(text: str = "hi", model: str = "small", **extra: Any) -> dict[str, Any]:
    body = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": text}]}
    return {**body, **extra}


# wire name -> (path, body builder)
WIRES: dict[str, tuple[str, Callable[..., dict[str, Any]]]] = {
    "openai": ("/v1/chat/completions", oa_body),
    "anthropic": ("/v1/messages", an_body),
}


def error_type(wire: str, body: dict[str, Any]) -> str:
    """The provider's error type, wherever its format puts it."""
    if wire == "openai":
        return str(body["error"]["type"])
    assert body["type"] == "error"
    return str(body["error"]["type"])


def sse_events(raw: str) -> list[tuple[str | None, str]]:
    """(event, data) pairs of an SSE body."""
    events = []
    for block in raw.strip().split("\n\n"):
        event, data = None, ""
        for line in block.splitlines():
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
        events.append((event, data))
    return events
