"""An outcome: one measured fact about quality.

This prompt, answered by this model (and the version its provider reported), got this score
from this grader, at this cost and latency. Outcomes come from evaluation runs (``eval``),
shadow comparisons on live traffic (``shadow``), client feedback (``feedback``) and recorded
results imported from elsewhere (``import``). They live in the same store as the request
records; the planner, the audit, drift detection and learned routing all read them.

An outcome's id is derived from what makes it the same measurement (its source, run, prompt,
route, model and grader), so writing it twice stores it once: a resumed evaluation skips the
pairs it already scored, and a re-imported dataset adds nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class OutcomeSource(StrEnum):
    EVAL = "eval"  # a labelled dataset sent through the engine (modelroute eval)
    SHADOW = "shadow"  # a sampled live request answered again by another model, compared
    FEEDBACK = "feedback"  # a client's score or label for a request it made
    IMPORT = "import"  # recorded results brought in (the neutral per-prompt outcome format)


@dataclass(frozen=True, slots=True)
class Outcome:
    source: OutcomeSource
    grader: str  # "exact", "regex", "numeric", "choice", "json_field", "judge:MODEL", ...
    score: float  # in [0, 1]
    model: str  # the policy's name for the model (or the dataset's, for imports)
    created_at: float  # seconds since the epoch
    prompt_id: str | None = None  # the dataset's id, or the request id for live traffic
    prompt_hash: str | None = None  # sha256 of the prompt's messages (``prompt_hash``)
    task: str | None = None
    route: str | None = None
    reported_model: str | None = None  # the version the provider reported having answered
    fingerprint: str | None = None  # the provider's system fingerprint, when it gives one
    cost_usd: float | None = None
    latency_ms: float | None = None
    request_id: str | None = None  # the live request it measures (shadow, feedback)
    run: str | None = None  # the evaluation run or import it came from
    # confidence signal name -> value for this answer (logprobs, label_probability, ...),
    # what calibration fits a cascade's threshold on
    confidences: Mapping[str, float] = field(default_factory=dict)
    detail: Mapping[str, Any] = field(default_factory=dict)  # the grader's evidence
    outcome_id: str = ""  # derived when left empty (see ``outcome_id``)

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"an outcome's score must be in [0, 1], got {self.score}")
        if not self.outcome_id:
            object.__setattr__(self, "outcome_id", outcome_id(self))

    @property
    def version(self) -> str:
        """The version the quality figures are kept per: the provider-reported model, or the
        policy's name when the provider did not say."""
        return self.reported_model or self.model

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["source"] = str(self.source)
        data["confidences"] = dict(self.confidences)
        data["detail"] = dict(self.detail)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["source"] = OutcomeSource(known["source"])
        known["confidences"] = dict(known.get("confidences") or {})
        known["detail"] = dict(known.get("detail") or {})
        return cls(**known)


def outcome_id(o: Outcome) -> str:
    """What makes two outcomes the same measurement. Live outcomes (shadow, feedback) are
    keyed by their request; evaluation and import outcomes by their run and prompt."""
    subject = o.request_id if o.request_id is not None else o.prompt_id or o.prompt_hash or ""
    parts = (str(o.source), o.run or "", subject, o.route or "", o.model, o.grader)
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def prompt_hash(messages: Any) -> str:
    """A stable hash of a prompt (its messages as sent, or its text)."""
    import orjson

    raw = (
        messages.encode()
        if isinstance(messages, str)
        else orjson.dumps(messages, option=orjson.OPT_SORT_KEYS)
    )
    return hashlib.sha256(raw).hexdigest()
