"""Columns derived from a record when it is stored, so that reads over millions of records
group and add up in the database instead of decoding every record's body.

- ``task_key``: the task label, or the fingerprint of the prompt's template (``task_key.py``).
- ``decision_reason``: why the request went where it went, as one compact JSON array (below):
  the same value for every request decided the same way, so "which model served this task, and
  why" is a ``GROUP BY``.
- ``input_tokens``, ``output_tokens``, ``cached_input_tokens``, ``cache_write_tokens``: the
  request's usage (every answered attempt), so spend can be re-priced at other prices.

``decision_reason`` is ``[selected_by, strategy, objective, relaxed, min_quality, rejected,
served]``: how the route was found (name, alias, task, match, default, model), the route's
strategy and objective, the ``on_infeasible`` action if one produced the steps, the minimum
quality the planner applied, the ``[model, reason]`` pairs it rejected (sorted, each once), and
how the answering model came to answer: ``first`` (the planner's first choice), ``fallback``
(a later model of the steps, after a failure), ``escalated`` (a later cascade tier, on low
confidence), or null when no model answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from operator import itemgetter
from typing import Any

import orjson

from modelroute.planner.decision import Decision
from modelroute.records.record import DecisionView, RequestRecord
from modelroute.records.task_key import task_key

DERIVED_COLUMNS: tuple[str, ...] = (
    "task_key", "decision_reason", "input_tokens", "output_tokens", "cached_input_tokens",
    "cache_write_tokens",
)  # fmt: skip
NO_USAGE: tuple[None, None, None, None] = (None, None, None, None)


def decision_reason(
    decision: Mapping[str, Any] | None, final_model: str | None, escalations: int
) -> str | None:
    """The ``decision_reason`` of a decision in ``Decision.to_dict()`` form (or a record's
    ``DecisionView``, read from its ``Decision`` without building the dictionary)."""
    if isinstance(decision, DecisionView):  # before ``not``: its length builds the dictionary
        return _typed_reason(decision.decision, final_model, escalations)
    if not decision:
        return None
    rejected = sorted(
        {
            (str(r.get("model")), str(r.get("reason")))
            for r in decision.get("rejections") or ()
            if isinstance(r, Mapping)
        }
    )
    limits = decision.get("limits")
    if not isinstance(limits, Mapping):
        limits = {}
    reason = (
        decision.get("selected_by"),
        decision.get("strategy"),
        decision.get("objective"),
        decision.get("relaxed"),
        limits.get("min_quality"),
        rejected,
        _served(decision.get("chosen"), final_model, escalations),
    )
    return orjson.dumps(reason).decode()


def _typed_reason(d: Decision, final_model: str | None, escalations: int) -> str:
    # The writer's path, for every record: the same value as above, from the typed decision
    # (the dictionary form renders every rejection's message, which this does not need).
    # Its rejected pairs are encoded once per distinct list of them: requests decided the
    # same way share it (that is what the column is for), and it is most of the value.
    reason = (
        d.selected_by, d.strategy, d.objective, d.relaxed, d.min_quality,
        _rejected(tuple(map(_PAIR, d.rejections))),
        _served(d.chosen, final_model, escalations),
    )  # fmt: skip
    return orjson.dumps(reason).decode()


_PAIR = itemgetter(0, 1)  # a rejection's (model, reason); a Reason is its value as text


@lru_cache(maxsize=1024)
def _rejected(pairs: tuple[tuple[str, str], ...]) -> orjson.Fragment:
    """The ``[model, reason]`` pairs of a decision's rejections, sorted, each once, as JSON."""
    return orjson.Fragment(orjson.dumps(sorted(set(pairs))))


def _served(chosen: Any, final_model: str | None, escalations: int) -> str | None:
    if final_model is None:
        return None
    if final_model == chosen:
        return "first"
    return "escalated" if escalations else "fallback"


def usage_columns(usage: Any) -> tuple[int | None, ...]:
    """The four token columns of a ``Usage``, its dict form, or its stored array."""
    if usage is None:
        return NO_USAGE
    if isinstance(usage, list | tuple):
        return tuple(usage[:4])
    if isinstance(usage, Mapping):
        return (
            usage.get("input_tokens"),
            usage.get("output_tokens"),
            usage.get("cached_input_tokens"),
            usage.get("cache_write_tokens"),
        )
    return (
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_input_tokens,
        usage.cache_write_tokens,
    )


def derived(r: RequestRecord) -> tuple[Any, ...]:
    """A record's ``DERIVED_COLUMNS``. The template key is computed from the prompt text the
    record held in memory when its stored prompt is only a hash, or nothing."""
    prompt = r.prompt if r.template_source is None else r.template_source
    return (
        task_key(r.task, prompt),
        decision_reason(r.decision, r.final_model, r.escalations),
        *usage_columns(r.usage),
    )
