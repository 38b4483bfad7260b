"""The policy language: pydantic models of the YAML file, unknown keys rejected.

These models describe what a user may write. Cross-references (a route naming a model), prices
looked up from ``genai-prices`` and the pinned-version check live in ``validate.py``; the fast,
plain-data form the planner reads is built in ``compile.py``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from modelroute.failures import FailureClass
from modelroute.policy.affinity_spec import AffinitySetting

NonNegFloat = Annotated[float, Field(ge=0)]
PosInt = Annotated[int, Field(gt=0)]
Probability = Annotated[float, Field(ge=0, le=1)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
EnvRef = Annotated[str, Field(pattern=r"^env:[A-Za-z_][A-Za-z0-9_]*$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


# A provider kind: a built-in wire format (openai, anthropic, simulator) or one a package
# registers; which kinds exist is checked when the policy is built (``build.py``).
ProviderKind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]*$", max_length=64)]


class Capability(StrEnum):
    TOOLS = "tools"
    JSON_MODE = "json_mode"
    VISION = "vision"
    LOGPROBS = "logprobs"
    RESPONSES = "responses"  # the upstream serves OpenAI's Responses API at base_url/responses


class RequestParam(StrEnum):
    """Request fields a policy may have the gateway remove before a model sees them.

    Optional generation settings only: a model that rejects one (newer Claude models refuse
    ``temperature`` beside ``top_p``) can still serve the request without it. Fields the
    gateway itself needs (messages, tools, max_tokens, logprobs for confidence) are not here.
    """

    TEMPERATURE = "temperature"
    TOP_P = "top_p"
    TOP_K = "top_k"
    FREQUENCY_PENALTY = "frequency_penalty"
    PRESENCE_PENALTY = "presence_penalty"
    SEED = "seed"
    STOP = "stop"
    LOGIT_BIAS = "logit_bias"
    N = "n"
    PARALLEL_TOOL_CALLS = "parallel_tool_calls"
    REASONING_EFFORT = "reasoning_effort"
    SERVICE_TIER = "service_tier"
    THINKING = "thinking"
    USER = "user"
    METADATA = "metadata"
    STORE = "store"


class Objective(StrEnum):
    MIN_COST = "min_cost"
    MIN_LATENCY = "min_latency"
    MAX_QUALITY = "max_quality"


class OnInfeasible(StrEnum):
    REJECT = "reject"
    CHEAPEST = "cheapest"
    STRONGEST = "strongest"
    RELAX_LATENCY = "relax_latency"


# Failure classes a policy may name; the classifier and the list live in ``failures.py``.
FailureClassName = FailureClass


class Prices(Strict):
    """USD per million tokens. Fields left out come from ``genai-prices``."""

    input: NonNegFloat | None = None
    output: NonNegFloat | None = None
    cached_input: NonNegFloat | None = None
    cache_write: NonNegFloat | None = None


class LatencyPrior(Strict):
    p50_ms: NonNegFloat
    p95_ms: NonNegFloat

    @model_validator(mode="after")
    def _ordered(self) -> LatencyPrior:
        if self.p95_ms < self.p50_ms:
            raise ValueError("p95_ms must be at least p50_ms")
        return self


class BreakerOverride(Strict):
    """A model's own circuit-breaker settings; each one left out comes from the defaults."""

    error_rate: Annotated[float, Field(gt=0, le=1)] | None = None
    min_calls: Annotated[int, Field(ge=1, le=100_000)] | None = None
    window_s: Annotated[float, Field(gt=0, le=3600)] | None = None
    consecutive_failures: Annotated[int, Field(ge=1, le=1000)] | None = None
    cooldown_s: Annotated[float, Field(gt=0, le=3600)] | None = None


class CircuitBreaker(Strict):
    """When a model's breaker opens, for how long, and how much of a route it may take out."""

    error_rate: Annotated[float, Field(gt=0, le=1)] = 0.5
    min_calls: Annotated[int, Field(ge=1, le=100_000)] = 50
    window_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    consecutive_failures: Annotated[int, Field(ge=1, le=1000)] = 10
    cooldown_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    max_ejection_percent: Annotated[int, Field(ge=0, le=100)] = 50


class ModelSpec(Strict):
    provider: ProviderKind
    base_url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    model_id: Name
    allow_floating: bool = False
    api_key: EnvRef | None = None
    prices: Prices = Prices()
    context_window: PosInt
    max_output_tokens: PosInt | None = None
    capabilities: list[Capability] = []
    latency: LatencyPrior
    quality: dict[Name, Probability] = {}
    drop_params: list[RequestParam] = []
    forward_metadata: bool = False  # also send the metadata keys routing reads
    circuit_breaker: BreakerOverride | None = None
    rate_limit: ModelRateLimit | None = None


class Timeouts(Strict):
    attempt_ms: PosInt = 30_000
    total_ms: PosInt = 60_000

    @model_validator(mode="after")
    def _attempt_within_total(self) -> Timeouts:
        if self.attempt_ms > self.total_ms:
            raise ValueError("attempt_ms must not exceed total_ms")
        return self


_RETRYABLE_DEFAULT = [
    FailureClassName.TIMEOUT,
    FailureClassName.CONNECT_ERROR,
    FailureClassName.RATE_LIMITED,
    FailureClassName.OVERLOADED,
    FailureClassName.SERVER_ERROR,
]


class Retries(Strict):
    # Every attempt on one model, the first included: 1 means no retry.
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    backoff_ms: NonNegFloat = 200
    max_backoff_ms: NonNegFloat = 5_000
    on: list[FailureClassName] = list(_RETRYABLE_DEFAULT)


class Match(Strict):
    """All given rules must hold. Lists mean 'any of these'."""

    model: list[Name] = []
    task: list[Name] = []
    metadata: dict[Name, list[str]] = {}
    min_prompt_tokens: Annotated[int, Field(ge=0)] | None = None
    max_prompt_tokens: Annotated[int, Field(ge=0)] | None = None
    tools: bool | None = None
    images: bool | None = None


class Constraints(Strict):
    max_latency_ms: Annotated[float, Field(gt=0)] | None = None
    max_cost_usd: Annotated[float, Field(gt=0)] | None = None
    min_quality: Probability | None = None


class FixedStrategy(Strict):
    kind: Literal["fixed"]
    models: Annotated[list[Name], Field(min_length=1)]


class CheapestQualifiedStrategy(Strict):
    kind: Literal["cheapest_qualified"]
    models: list[Name] = []  # empty: every model in the policy


class ConfidenceSignal(StrEnum):
    LOGPROBS = "logprobs"
    LABEL_PROBABILITY = "label_probability"
    VALIDATOR = "validator"
    VERIFIER = "verifier"


class Confidence(Strict):
    signal: ConfidenceSignal
    threshold: Probability
    labels: list[str] = []  # for label_probability: the allowed answers
    validator: Name | None = None  # for validator: e.g. "json", "regex:..."
    verifier: Name | None = None  # for verifier: a model name


class CascadeStrategy(Strict):
    kind: Literal["cascade"]
    tiers: Annotated[list[Annotated[list[Name], Field(min_length=1)]], Field(min_length=2)]
    confidence: Confidence


class LearnedStrategy(Strict):
    """Route by a trained router file (``modelroute train``). ``rule: threshold`` (the
    default): the cheapest model whose predicted score for the prompt clears the threshold;
    ``rule: score_minus_cost``: the model with the highest predicted score - lambda x its
    estimated cost in USD for the request."""

    kind: Literal["learned"]
    models: Annotated[list[Name], Field(min_length=2)]
    router: Annotated[str, Field(min_length=1)]  # the router file, relative to this policy
    rule: Literal["threshold", "score_minus_cost"] = "threshold"
    threshold: Probability | None = None  # overrides the one calibrated at training
    # score points given up per USD saved; overrides the one calibrated at training
    lambda_: Annotated[float, Field(ge=0)] | None = Field(default=None, alias="lambda")


Strategy = Annotated[
    FixedStrategy | CheapestQualifiedStrategy | CascadeStrategy | LearnedStrategy,
    Field(discriminator="kind"),
]


class Shadow(Strict):
    """A share of a route's successful requests answered again, in the background, by other
    models, each answer compared with the one the client got (see ``modelroute.shadow``)."""

    models: Annotated[list[Name], Field(min_length=1)]
    sample: Annotated[float, Field(gt=0, le=1)]  # the share of successful requests shadowed
    judge: Name = "agreement"  # "agreement" (normalised exact match) or a model that judges
    max_usd_per_day: NonNegFloat  # per UTC day, shadow calls and judging together


class WhenStateDown(StrEnum):
    """What a limit does while the shared state (Redis) cannot be reached."""

    OPEN = "open"  # admit the request unchecked (logged, counted in a metric)
    CLOSED = "closed"  # refuse it (429)


class LimitScope(StrEnum):
    KEY = "key"  # each caller (API key) has its own allowance on the route
    ROUTE = "route"  # one allowance for the route, all callers together


class RateLimit(Strict):
    """Requests and tokens (prompt + expected output) per sliding minute."""

    requests_per_minute: PosInt | None = None
    tokens_per_minute: PosInt | None = None
    per: LimitScope = LimitScope.KEY
    when_state_down: WhenStateDown = WhenStateDown.OPEN

    @model_validator(mode="after")
    def _some_limit(self) -> RateLimit:
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            raise ValueError("give requests_per_minute, tokens_per_minute or both")
        return self


class ModelLimitScope(StrEnum):
    MODEL = "model"  # one allowance for the model, every route and caller together
    KEY = "key"  # each caller (API key) has its own allowance on the model


class ModelRateLimit(Strict):
    """A model's requests and tokens per sliding minute, counted over every route that calls
    it first (a provider's quota, say); ``per: key`` gives each caller its own allowance."""

    requests_per_minute: PosInt | None = None
    tokens_per_minute: PosInt | None = None
    per: ModelLimitScope = ModelLimitScope.MODEL
    when_state_down: WhenStateDown = WhenStateDown.OPEN

    @model_validator(mode="after")
    def _some_limit(self) -> ModelRateLimit:
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            raise ValueError("give requests_per_minute, tokens_per_minute or both")
        return self


class BudgetPeriod(StrEnum):
    DAY = "day"  # the UTC day
    MONTH = "month"  # the UTC calendar month


class BudgetScope(StrEnum):
    ROUTE = "route"  # one budget for the route
    KEY = "key"  # each caller (API key) has its own budget on the route
    TEAM = "team"  # each caller's team has its own budget on the route


class Budget(Strict):
    """USD spend allowed per period; reserved before each call, settled with the actual cost."""

    usd: Annotated[float, Field(gt=0)]
    period: BudgetPeriod = BudgetPeriod.DAY
    per: BudgetScope = BudgetScope.ROUTE
    when_state_down: WhenStateDown = WhenStateDown.CLOSED


class OnBudget(StrEnum):
    REJECT = "reject"  # 429 with the budget in the error
    DEGRADE = "degrade"  # only the cheaper qualified models that fit what is left


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
MAX_CACHE_TTL_S = 30 * 86_400.0


def _seconds(value: object) -> object:
    """``90``, ``"90s"``, ``"10m"``, ``"1h"``, ``"2d"`` or ``"500ms"`` as seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration such as 30s, 10m, 1h, 2d or a number of seconds")
    if not isinstance(value, str):
        return value  # numbers pass on to the float check; anything else fails there
    found = _DURATION.match(value)
    if found is None:
        raise ValueError("a duration such as 30s, 10m, 1h, 2d or a number of seconds")
    return float(found.group(1)) * _UNIT_S[found.group(2) or "s"]


Duration = Annotated[float, BeforeValidator(_seconds), Field(gt=0, le=MAX_CACHE_TTL_S)]


class CacheMode(StrEnum):
    EXACT = "exact"  # an exact repeat of the request only
    SEMANTIC = "semantic"  # also a close paraphrase of its last user message (the embed extra)


DEFAULT_SIMILARITY = 0.95


class CacheSpec(Strict):
    """A route's response cache (``modelroute.cache``): an exact repeat of a request (same
    route, model and generation fields) within ``ttl`` is answered from the cache, at no cost.
    Requests that sample (``temperature`` above 0, or unset: providers default to sampling)
    are never cached unless ``allow_sampling`` says a repeated sample is acceptable.

    ``mode: semantic`` also answers, on an exact miss, a request whose last user message is
    a paraphrase (cosine ``similarity`` of sentence embeddings at least that, default 0.95)
    of a cached one whose every other field is the same (``cache/semantic.py``)."""

    ttl: Duration
    allow_sampling: bool = False
    mode: CacheMode = CacheMode.EXACT
    similarity: Annotated[float, Field(ge=0.5, le=1.0)] | None = None


class RouteSpec(Strict):
    aliases: list[Name] = []
    description: str | None = None
    match: Match | None = None
    constraints: Constraints = Constraints()
    objective: Objective | None = None  # default min_cost; 'fixed' keeps its declared order
    strategy: Strategy
    fallbacks: list[Name] = []
    retries: Retries | None = None
    timeouts: Timeouts | None = None
    output_tokens: PosInt | None = None
    on_infeasible: OnInfeasible = OnInfeasible.REJECT
    hedge_after_ms: Annotated[float, Field(gt=0)] | None = None
    quality: RouteQuality | None = None
    shadow: Shadow | None = None
    rate_limit: RateLimit | None = None
    budget: Budget | None = None
    on_budget: OnBudget = OnBudget.REJECT
    cache: CacheSpec | None = None
    affinity: AffinitySetting | None = None  # session affinity (``affinity_spec.py``)


# Rated requests the gateway keeps per route and model (the newest); min_samples cannot ask
# for more than it keeps.
QUALITY_WINDOW = 500


class QualityCompare(StrEnum):
    MEAN = "mean"  # the measured mean must clear min_quality
    LOWER_BOUND = "lower_bound"  # the lower bound of its confidence interval must


class QualitySettings(Strict):
    """When measured quality (outcomes, feedback) replaces a model's declared prior."""

    # Distinct requests with a score (or outcomes of the current version), per route and
    # model. One request counts once however often it is rated, so a single caller cannot
    # outvote the prior with one request.
    min_samples: Annotated[int, Field(ge=1, le=QUALITY_WINDOW)] = 30
    compare: QualityCompare = QualityCompare.MEAN


class RouteQuality(Strict):
    """A route's own quality settings; unset ones follow ``defaults.quality``."""

    compare: QualityCompare | None = None


class Defaults(Strict):
    retries: Retries = Retries()
    timeouts: Timeouts = Timeouts()
    circuit_breaker: CircuitBreaker = CircuitBreaker()
    output_tokens: PosInt = 256
    route: Name | None = None  # the route for requests that name none and match none
    quality: QualitySettings = QualitySettings()


class SimulatorSpec(Strict):
    """Upstreams played by the built-in simulator, started by ``modelroute serve``."""

    config: Annotated[str, Field(min_length=1)]  # a simulator YAML, relative to this policy
    host: str = "127.0.0.1"
    port: Annotated[int, Field(gt=0, lt=65536)] = 8900


class PolicySpec(Strict):
    version: Annotated[str, Field(max_length=200)] | None = None
    simulator: SimulatorSpec | None = None
    defaults: Defaults = Defaults()
    models: Annotated[dict[Name, ModelSpec], Field(min_length=1)]
    routes: Annotated[dict[Name, RouteSpec], Field(min_length=1)]
