"""Configuration of the upstream simulator: validated once, then compiled to plain data.

The YAML/dict shape (every field optional except ``models``)::

    seed: 7
    api_key: sk-xyz            # if set, requests must carry it (Bearer / x-api-key)
    keep_responses: false      # true: /v1/responses keeps responses (previous_response_id)
    models:
      small:
        reported_model: small-2024-08-06
        system_fingerprint: fp_small_1
        latency_ms: {p50: 20, p95: 60}
        ttft_ms: {p50: 10, p95: 30}
        tokens_per_second: 500
        context_window: 8192
        faults: {server_error: 0.1, rate_limited: 0.05}
        retry_after_s: 1
        script: [ok, server_error, ok]
        answers:
          - {match: "capital of France", content: "Paris", logprob: -0.05}
        default_answer: "Hello from the simulator."

These pydantic models are used only when loading or changing the config (admin path);
the request path reads the compiled ``sim_engine.ModelRuntime`` instead, because
validation on every request would cost more than the whole simulated answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelroute.testing.sim_prompt_cache import PromptCacheConfig

# Every outcome a request can be scripted or drawn into. "ok" is the absence of a fault.
FaultName = Literal[
    "server_error",
    "overloaded",
    "rate_limited",
    "hang",
    "reset",
    "disconnect_mid_stream",
    "stream_error",
    "malformed_json",
    "empty_content",
    "timeout",
]
ScriptEntry = Literal["ok"] | FaultName


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Percentiles(_Strict):
    """A latency distribution given by two percentiles; p95 defaults to p50 (constant)."""

    p50: float = Field(default=0.0, ge=0.0)
    p95: float | None = Field(default=None, ge=0.0)

    @model_validator(mode="after")
    def _p95_not_below_p50(self) -> Percentiles:
        if self.p95 is not None and self.p95 < self.p50:
            raise ValueError(f"p95 ({self.p95}) must be >= p50 ({self.p50})")
        return self


class Faults(_Strict):
    """Per-request probabilities of each fault; the remainder is a normal answer."""

    server_error: float = Field(default=0.0, ge=0.0, le=1.0)
    overloaded: float = Field(default=0.0, ge=0.0, le=1.0)
    rate_limited: float = Field(default=0.0, ge=0.0, le=1.0)
    hang: float = Field(default=0.0, ge=0.0, le=1.0)
    reset: float = Field(default=0.0, ge=0.0, le=1.0)
    disconnect_mid_stream: float = Field(default=0.0, ge=0.0, le=1.0)
    stream_error: float = Field(default=0.0, ge=0.0, le=1.0)
    malformed_json: float = Field(default=0.0, ge=0.0, le=1.0)
    empty_content: float = Field(default=0.0, ge=0.0, le=1.0)
    timeout: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _sum_at_most_one(self) -> Faults:
        total = sum(self.model_dump().values())
        # A little slack so that e.g. 0.1 + 0.2 + 0.7 is not rejected for float rounding.
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault probabilities sum to {total:.4f}, must be <= 1")
        return self


class ToolCall(_Strict):
    """A tool call the model makes when the request offers a tool of this name."""

    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class Answer(_Strict):
    """One row of the answer table: a case-insensitive substring of the last user text.

    A row with a ``tool_call`` calls that tool when the request offers it and allows calls;
    otherwise it answers its ``content``, or the model's ``default_answer`` if it has none."""

    match: str = ""
    content: str = ""
    logprob: float = Field(default=-0.3, le=0.0)
    tool_call: ToolCall | None = None


class ModelConfig(_Strict):
    """Scripted behaviour of one simulated model (keyed by the name clients send)."""

    reported_model: str | None = None
    system_fingerprint: str | None = None  # default: fp_ and a hash of the reported model
    latency_ms: Percentiles = Field(default_factory=Percentiles)
    ttft_ms: Percentiles = Field(default_factory=Percentiles)
    tokens_per_second: float = Field(default=1000.0, gt=0.0)
    context_window: int = Field(default=128_000, gt=0)
    faults: Faults = Field(default_factory=Faults)
    retry_after_s: float = Field(default=1.0, ge=0.0)
    script: list[ScriptEntry] = Field(default_factory=list)
    answers: list[Answer] = Field(default_factory=list)
    default_answer: str = "Hello from the simulator."
    default_logprob: float = Field(default=-0.3, le=0.0)
    # OpenAI-style prompt caching (``sim_prompt_cache.py``): off unless set
    prompt_cache: PromptCacheConfig | None = None


class SimulatorConfig(_Strict):
    """The whole simulator: a seed, an optional API key and the models."""

    seed: int = 0
    api_key: str | None = None
    # The Responses API's responses kept, as OpenAI's API keeps them (``store``), so a
    # ``previous_response_id`` naming one is served; off: each says ``store: false`` and
    # every ``previous_response_id`` is refused
    keep_responses: bool = False
    models: dict[str, ModelConfig] = Field(default_factory=dict)

    @classmethod
    def from_yaml(cls, path: str | Path) -> SimulatorConfig:
        """Load and validate a YAML file (unknown keys are rejected)."""
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return cls.model_validate(raw if raw is not None else {})


def merged_model_config(current: ModelConfig | None, changes: dict[str, Any]) -> ModelConfig:
    """Apply a partial change: each top-level key given replaces that key wholesale.

    Replacing (not deep-merging) keeps admin calls predictable: ``faults={"server_error": 1}``
    means "only server errors now", not "add server errors to whatever was there".
    """
    base = current.model_dump() if current is not None else {}
    base.update(changes)
    return ModelConfig.model_validate(base)
