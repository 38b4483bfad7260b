"""Training data from a record store: its outcomes (``eval``, ``shadow``, ``feedback``, and
``import`` when asked) as an ``OutcomeSet``, the same arrays ``load_outcomes`` reads from a
directory.

- **One prompt** is one prompt hash where an outcome has one (an evaluation item's messages, a
  shadowed request's messages), else the live request it measures (feedback names only its
  request; the request's shadow outcomes give the hash), else the outcome's prompt id. Several
  outcomes of one model on one prompt (repeated runs, feedback and shadow) are averaged.
- **Its text** is what a learned route reads at serving time, the last user message: kept on
  an evaluation's outcome (``detail.prompt``), else taken from the stored record of the
  request (its ``prompt``, when the gateway keeps prompt text: not under ``hash`` or ``off``).
  A prompt with no text is left out and counted.
- **A shadow comparison** scores the shadow model's answer against the answer the client got,
  so the model that served (``detail.baseline_model``) is the reference: it counts as 1.0 on
  that prompt, at the recorded request's cost, unless an evaluation or feedback scored it.
- **Cost** is each outcome's ``cost_usd``; where one is missing, the model's mean over the
  others. The task label is the prompt's category (what the ``category`` scorer reads).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from modelroute.learned.data import OutcomeDataError, OutcomeSet
from modelroute.outcomes.outcome import Outcome, OutcomeSource

if TYPE_CHECKING:
    from modelroute.records.stores.base import Store

DEFAULT_SOURCES = (OutcomeSource.EVAL, OutcomeSource.SHADOW, OutcomeSource.FEEDBACK)
_ROLE = re.compile(r"^(system|user|assistant|developer|tool|function): ", re.MULTILINE)
_PAGE = 500  # request ids per read of the records


def last_user_text(recorded: str | None) -> str | None:
    """The last user message of a record's ``prompt`` (``role: content`` lines, as the
    gateway keeps them); None for a hashed or missing prompt, or one with no user message."""
    if not recorded or recorded.startswith("sha256:"):
        return None
    marks = list(_ROLE.finditer(recorded))
    for i in range(len(marks) - 1, -1, -1):
        if marks[i].group(1) == "user":
            end = marks[i + 1].start() - 1 if i + 1 < len(marks) else len(recorded)
            return recorded[marks[i].end() : end]
    return None


@dataclass
class _Prompt:
    text: str | None = None
    task: str | None = None
    scores: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    costs: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    reference: dict[str, float | None] = field(default_factory=dict)  # shadow baselines' cost


@dataclass(frozen=True)
class StoreOutcomes:
    data: OutcomeSet
    outcomes: int  # outcomes read
    prompts: int  # distinct prompts among them
    without_text: int  # prompts left out: no text kept for them
    references: int  # shadow baselines counted as the reference answer (1.0)


async def read_store(
    store: Store,
    sources: Sequence[OutcomeSource] = DEFAULT_SOURCES,
    models: Sequence[str] | None = None,
    since: float | None = None,
) -> StoreOutcomes:
    """The store's outcomes of ``sources`` as training data (see the module's docstring)."""
    found: list[Outcome] = []
    for source in sources:
        found += await store.outcomes(source=source, since=since)
    if not found:
        names = ", ".join(str(s) for s in sources)
        raise OutcomeDataError(f"the store has no outcomes from {names}")
    records = await _records(store, found)
    prompts = _group(found, records)
    return _assemble(prompts, models, len(found))


async def _records(store: Store, found: Iterable[Outcome]) -> dict[str, Mapping[str, Any]]:
    """The stored records the outcomes name (their text and cost), by request id."""
    wanted = sorted({rid for o in found if (rid := _request_of(o)) is not None})
    out: dict[str, Mapping[str, Any]] = {}
    for i in range(0, len(wanted), _PAGE):
        for record in await store.get_many(wanted[i : i + _PAGE]):
            out[str(record["request_id"])] = record
    return out


def _request_of(o: Outcome) -> str | None:
    if o.request_id is not None:
        return o.request_id
    request = o.detail.get("request")
    return request if isinstance(request, str) else None


def _keys(found: Sequence[Outcome]) -> list[str]:
    """Each outcome's prompt key (see the module's docstring)."""
    hash_of_request = {o.request_id: o.prompt_hash for o in found if o.request_id and o.prompt_hash}
    keys = []
    for o in found:
        digest = o.prompt_hash or (o.request_id and hash_of_request.get(o.request_id))
        keys.append(
            f"h:{digest}" if digest else f"r:{o.request_id}" if o.request_id else f"p:{o.prompt_id}"
        )
    return keys


def _text(o: Outcome, record: Mapping[str, Any] | None) -> str | None:
    kept = o.detail.get("prompt")
    if isinstance(kept, str) and kept:
        return kept
    return None if record is None else last_user_text(record.get("prompt"))


def _group(
    found: Sequence[Outcome], records: Mapping[str, Mapping[str, Any]]
) -> dict[str, _Prompt]:
    prompts: dict[str, _Prompt] = defaultdict(_Prompt)
    for key, o in zip(_keys(found), found, strict=True):
        p = prompts[key]
        rid = _request_of(o)
        record = records.get(rid) if rid is not None else None
        p.text = p.text or _text(o, record)
        p.task = p.task or o.task
        p.scores[o.model].append(o.score)
        if o.cost_usd is not None:
            p.costs[o.model].append(o.cost_usd)
        baseline = o.detail.get("baseline_model")
        if o.source is OutcomeSource.SHADOW and isinstance(baseline, str):
            cost = record.get("cost_usd") if record is not None else None
            p.reference[baseline] = float(cost) if isinstance(cost, int | float) else None
    return prompts


def _assemble(
    prompts: Mapping[str, _Prompt], models: Sequence[str] | None, read: int
) -> StoreOutcomes:
    references = sum(
        1 for p in prompts.values() for m in p.reference if m not in p.scores and p.text
    )
    for p in prompts.values():
        for model, paid in p.reference.items():
            if model not in p.scores:
                p.scores[model].append(1.0)
                if paid is not None:
                    p.costs[model].append(paid)
    kept = {k: p for k, p in prompts.items() if p.text}
    seen = sorted({m for p in kept.values() for m in p.scores})
    chosen = list(models) if models else seen
    unknown = [m for m in chosen if m not in seen]
    if unknown:
        raise OutcomeDataError(
            f"no outcomes with prompt text for model(s) {', '.join(unknown)}; the store has: "
            f"{', '.join(seen) or 'none'}"
        )
    if len(chosen) < 2:
        raise OutcomeDataError("a router needs at least two models")
    keys = sorted(kept)
    score = np.full((len(keys), len(chosen)), np.nan)
    cost = np.full((len(keys), len(chosen)), np.nan)
    for i, key in enumerate(keys):
        for j, model in enumerate(chosen):
            p = kept[key]
            if p.scores.get(model):
                score[i, j] = float(np.mean(p.scores[model]))
                if p.costs.get(model):
                    cost[i, j] = float(np.mean(p.costs[model]))
    _fill_costs(cost, score, chosen)
    data = OutcomeSet(
        ids=keys,
        texts=[str(kept[k].text) for k in keys],
        categories=[kept[k].task for k in keys],
        splits=[None] * len(keys),
        models=tuple(chosen),
        score=score,
        cost=cost,
        data_hash=_digest(keys, score, cost),
    )
    return StoreOutcomes(data, read, len(prompts), len(prompts) - len(kept), references)


def _fill_costs(cost: np.ndarray[Any, Any], score: np.ndarray[Any, Any], models: list[str]) -> None:
    """A scored pair with no recorded cost takes the model's mean recorded cost."""
    for j, model in enumerate(models):
        known = cost[:, j][~np.isnan(cost[:, j])]
        gaps = np.isnan(cost[:, j]) & ~np.isnan(score[:, j])
        if gaps.any():
            if not len(known):
                raise OutcomeDataError(f"no outcome of model {model!r} has a recorded cost")
            cost[gaps, j] = known.mean()


def _digest(keys: list[str], score: np.ndarray[Any, Any], cost: np.ndarray[Any, Any]) -> str:
    digest = hashlib.sha256("\n".join(keys).encode())
    digest.update(np.nan_to_num(score, nan=-1.0).tobytes())
    digest.update(np.nan_to_num(cost, nan=-1.0).tobytes())
    return digest.hexdigest()
