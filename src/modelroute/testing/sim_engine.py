"""The simulator's behaviour engine: wire-independent decisions made per request.

A ``ModelConfig`` is compiled once into a ``ModelRuntime`` of plain attributes (thresholds,
lognormal parameters, lower-cased match strings) so the request path does no validation.
Each request then draws, synchronously and in a fixed order, its outcome and its delay from
the model's own seeded RNG: the same config and the same number of requests per model give
the same outcome counts, whatever the interleaving between models.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections import deque
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal, get_args

import orjson

from modelroute.testing.sim_config import Answer, FaultName, ModelConfig, Percentiles
from modelroute.testing.sim_json import json_content
from modelroute.testing.sim_prompt_cache import PromptCache, message_prefixes

FAULT_NAMES: tuple[str, ...] = get_args(FaultName)
# z-score of the 95th percentile of a standard normal, to fit a lognormal to p50/p95.
_Z95 = 1.6448536269514722
# Tool-call arguments are streamed in pieces of this many characters (roughly a token).
_TOOL_PIECE_CHARS = 4
_TOKEN_RE = re.compile(r"\s*\S+")
_STD_NORMAL = NormalDist()

Finish = Literal["stop", "length", "tool", "stop_sequence"]


class LatencyDist:
    """Lognormal fitted to p50/p95 (in ms); constant when they are equal."""

    __slots__ = ("_mu", "_p50_s", "_sigma")

    def __init__(self, spec: Percentiles) -> None:
        p95 = spec.p50 if spec.p95 is None else spec.p95
        self._p50_s = spec.p50 / 1000.0
        # A zero median cannot be fitted in log space; treat it as "no delay".
        if spec.p50 <= 0.0 or p95 <= spec.p50:
            self._sigma = 0.0
            self._mu = 0.0
        else:
            self._mu = math.log(spec.p50 / 1000.0)
            self._sigma = (math.log(p95) - math.log(spec.p50)) / _Z95

    def sample_s(self, rng: random.Random) -> float:
        """Draw one delay in seconds.

        Always exactly one uniform draw (inverse CDF, not ``lognormvariate``'s rejection
        loop), so the RNG sequence - and thus seeded outcome counts - never depends on
        the latency shape.
        """
        u = rng.random()
        if self._sigma <= 0.0:
            return self._p50_s
        z = _STD_NORMAL.inv_cdf(min(max(u, 1e-12), 1.0 - 1e-12))
        return math.exp(self._mu + self._sigma * z)


@dataclass(frozen=True, slots=True)
class CompiledToolCall:
    name: str
    arguments: dict[str, object]
    arguments_json: str


@dataclass(frozen=True, slots=True)
class CompiledAnswer:
    match: str  # lower-cased; "" matches everything
    content: str
    logprob: float
    tool_call: CompiledToolCall | None


@dataclass(slots=True)
class SimRequest:
    """What the engine needs from a parsed request, whatever its wire format."""

    model: str
    stream: bool
    max_tokens: int | None
    match_text: str
    prompt_tokens: int
    tool_names: frozenset[str] = frozenset()
    after_tool_result: bool = False
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int = 0
    include_usage: bool = False
    n: int = 1  # choices to answer with (OpenAI's ``n``)
    json_mode: str | None = None  # "object" | "schema": the content must be JSON
    json_schema: Any = None  # the schema the content follows, for "schema"
    tools_allowed: bool = True  # False when the client forbids tool calls
    # OpenAI's messages and their texts, for a model with a prompt cache
    messages: list[Any] | None = None
    texts: list[str] | None = None
    thinking: bool = False  # extended thinking asked for (Anthropic's wire)
    echo: dict[str, Any] = field(default_factory=dict)  # request fields a reply repeats
    search: bool = False  # a web search tool is offered (the Responses wire)


@dataclass(slots=True)
class Reply:
    """The answer to send, already cut by stop sequences and max_tokens."""

    tokens: list[str]
    logprobs: list[float]
    finish: Finish
    stop_sequence: str | None = None
    tool: CompiledToolCall | None = None
    tool_pieces: list[str] = field(default_factory=list)

    @property
    def content(self) -> str:
        return "".join(self.tokens)

    @property
    def completion_tokens(self) -> int:
        return len(self.tool_pieces) if self.tool is not None else len(self.tokens)


class ModelRuntime:
    """A compiled model: everything the request path reads, as plain attributes."""

    __slots__ = (
        "answers",
        "context_window",
        "default_answer",
        "fingerprint",
        "latency",
        "name",
        "prompt_cache",
        "reported_model",
        "retry_after_s",
        "rng",
        "script",
        "seconds_per_token",
        "thresholds",
        "ttft",
    )

    def __init__(self, name: str, config: ModelConfig, rng: random.Random) -> None:
        self.name = name
        self.rng = rng
        self.reported_model = config.reported_model or name
        self.fingerprint = config.system_fingerprint or default_fingerprint(self.reported_model)
        self.latency = LatencyDist(config.latency_ms)
        self.ttft = LatencyDist(config.ttft_ms)
        self.seconds_per_token = 1.0 / config.tokens_per_second
        self.context_window = config.context_window
        self.retry_after_s = config.retry_after_s
        self.thresholds = _cumulative(config.faults.model_dump())
        self.script: deque[str] = deque(config.script)
        self.answers = [_compile_answer(a, config.default_answer) for a in config.answers]
        self.default_answer = CompiledAnswer(
            "", config.default_answer, config.default_logprob, None
        )
        cache = config.prompt_cache
        self.prompt_cache = PromptCache(cache) if cache is not None else None

    def cached_tokens(self, req: SimRequest) -> int:
        """The prompt tokens read from this model's prompt cache (0 without one)."""
        cache, messages, texts = self.prompt_cache, req.messages, req.texts
        if cache is None or not messages or texts is None:
            return 0
        prefixes = message_prefixes(messages, lambda k: estimate_prompt_tokens(texts[:k], k))
        return cache.cached_tokens(prefixes, req.prompt_tokens)

    def next_outcome(self) -> str:
        """The scripted outcome if any is queued, else one drawn from the fault mix.

        The RNG is drawn even when the script decides, so that adding a script does not
        shift the sequence of later probabilistic outcomes.
        """
        draw = self.rng.random()
        if self.script:
            return self.script.popleft()
        for threshold, name in self.thresholds:
            if draw < threshold:
                return name
        return "ok"

    def pick_answer(self, text: str) -> CompiledAnswer:
        lowered = text.lower()
        for answer in self.answers:
            if answer.match in lowered:
                return answer
        return self.default_answer


def default_fingerprint(model: str) -> str:
    """A stable ``system_fingerprint`` for a model that configures none: OpenAI's spec has it
    a string, and real ones look like this (``fp_`` and ten hex digits)."""
    return "fp_" + hashlib.sha256(model.encode()).hexdigest()[:10]


def _cumulative(probabilities: dict[str, float]) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    total = 0.0
    for name in FAULT_NAMES:
        p = probabilities.get(name, 0.0)
        if p > 0.0:
            total += p
            out.append((total, name))
    return out


def _compile_answer(answer: Answer, default: str) -> CompiledAnswer:
    tool = None
    content = answer.content
    if answer.tool_call is not None:
        args = dict(answer.tool_call.arguments)
        tool = CompiledToolCall(answer.tool_call.name, args, orjson.dumps(args).decode())
        # Asked without the tool (not offered, or tool_choice "none"), a model says something.
        content = content or default
    return CompiledAnswer(answer.match.lower(), content, answer.logprob, tool)


def estimate_prompt_tokens(texts: list[str], n_messages: int) -> int:
    """Offline estimate: 4 characters per token plus 4 tokens of framing per message."""
    return sum(len(t) for t in texts) // 4 + 4 * n_messages


def split_tokens(content: str) -> list[str]:
    """Whitespace-delimited words, each carrying its leading whitespace (OpenAI style).

    Joining the pieces gives back ``content`` exactly, so streamed deltas concatenate to
    the non-streamed answer.
    """
    tokens = _TOKEN_RE.findall(content)
    consumed = sum(len(t) for t in tokens)
    if consumed < len(content):
        if tokens:
            tokens[-1] += content[consumed:]
        else:
            tokens = [content]
    return tokens


def spread_logprob(mean: float, n: int) -> list[float]:
    """Per-token logprobs that vary (like real ones) but average exactly ``mean``.

    Weights alternate 1.5/0.5 (pairs average 1; an odd last token gets 1), so every value
    stays <= 0 when ``mean`` is.
    """
    weights = [1.5 if i % 2 == 0 else 0.5 for i in range(n)]
    if n % 2 == 1:
        weights[-1] = 1.0
    return [mean * w for w in weights]


def top_alternatives(token: str, logprob: float, k: int) -> list[tuple[str, float]]:
    """The chosen token first, then ``k - 1`` alternatives sharing the remaining mass."""
    if k <= 0:
        return []
    rest = max(1.0 - math.exp(logprob), 0.0)
    out = [(token, logprob)]
    for i in range(1, k):
        share = rest * 0.5**i
        out.append((f"{token}~{i}", math.log(share) if share > 0 else -9999.0))
    return out


def build_reply(answer: CompiledAnswer, req: SimRequest, *, empty: bool) -> Reply:
    """Turn the chosen answer into what is sent, honouring tools, stop and max_tokens."""
    if empty:
        return Reply(tokens=[], logprobs=[], finish="stop")
    tool = answer.tool_call
    calls = req.tools_allowed and not req.after_tool_result
    if tool is not None and tool.name in req.tool_names and calls:
        js = tool.arguments_json
        pieces = [js[i : i + _TOOL_PIECE_CHARS] for i in range(0, len(js), _TOOL_PIECE_CHARS)]
        return Reply(tokens=[], logprobs=[], finish="tool", tool=tool, tool_pieces=pieces)
    text = answer.content
    if req.json_mode is not None:
        text = json_content(text, req.json_schema if req.json_mode == "schema" else None)
    content, stop_hit = _cut_at_stop(text, req.stop)
    tokens = split_tokens(content)
    finish: Finish = "stop_sequence" if stop_hit is not None else "stop"
    if req.max_tokens is not None and len(tokens) > req.max_tokens:
        tokens = tokens[: req.max_tokens]
        finish, stop_hit = "length", None
    return Reply(tokens, spread_logprob(answer.logprob, len(tokens)), finish, stop_hit)


def _cut_at_stop(content: str, stops: tuple[str, ...]) -> tuple[str, str | None]:
    best: tuple[int, str] | None = None
    for stop in stops:
        at = content.find(stop) if stop else -1
        if at >= 0 and (best is None or at < best[0]):
            best = (at, stop)
    if best is None:
        return content, None
    return content[: best[0]], best[1]


@dataclass(slots=True)
class ContextOverflow:
    prompt_tokens: int
    completion_tokens: int
    window: int


def check_context(req: SimRequest, window: int) -> ContextOverflow | None:
    """Prompt estimate + requested completion over the window -> the provider's 400."""
    completion = req.max_tokens or 0
    if req.prompt_tokens + completion > window:
        return ContextOverflow(req.prompt_tokens, completion, window)
    return None
