"""Admission: a route's rate limit and budget applied to one planned request.

``Admission.admit`` runs after planning (the budget needs the decision's estimated cost) and
before the first call: it reserves the estimated cost in each budget that applies, then takes
the request and its estimated tokens from each rate limit. ``submit`` (a record sink) settles
what was reserved with the record's actual cost and tokens, whatever ended the request, streams
included: every request yields exactly one record, so every reservation is settled once.

While the counters cannot be reached, each limit does what its policy says
(``when_state_down``): ``open`` admits the request unchecked, ``closed`` refuses it; either
way the error is logged (at most once per ``quiet_s`` for each operation) and counted through
``on_error`` (a metric), and nothing is raised to the request but the refusal.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from modelroute.errors import BudgetExceededError, RateLimitedError
from modelroute.identity import ClientIdentity
from modelroute.planner import Decision
from modelroute.policy.compiled import BudgetRule, Model, RateRule, Route
from modelroute.records.record import RequestRecord
from modelroute.state.limits import BudgetCheck, BudgetVerdict, Counters, RateCheck

log = logging.getLogger("modelroute.state")

_ADVERB = {"day": "daily", "month": "monthly"}
ANONYMOUS = "anonymous"  # the caller of a request that presented no key
ErrorHook = Callable[[str, str], None]  # (operation, "open" | "closed")


class Account(NamedTuple):
    """Whom a request's limits are counted for: the hash of its key, its team, and the key's
    own budget and rate limit (from its ``ClientIdentity``)."""

    key_id: str | None
    team: str | None = None
    budget: BudgetRule | None = None
    rate: RateRule | None = None

    @classmethod
    def of(cls, key_id: str | None, identity: ClientIdentity | None) -> Account:
        if identity is None:
            return cls(key_id)
        budget = rate = None
        if identity.budget is not None:
            period = "month" if identity.budget.period == "monthly" else "day"
            budget = BudgetRule(identity.budget.usd, period, "key", "reject", False)
        if not identity.limits.unlimited:
            rpm, tpm = identity.limits.requests_per_minute, identity.limits.tokens_per_minute
            rate = RateRule(rpm, tpm, "key", True)
        return cls(identity.key_id, identity.team, budget, rate)

    @property
    def limited(self) -> bool:
        return self.budget is not None or self.rate is not None


def period_of(rule: BudgetRule, now: float) -> tuple[str, float]:
    """The budget's current period, as a name and the epoch second it ends (UTC)."""
    t = time.gmtime(now)
    if rule.period == "month":
        year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
        return f"{t.tm_year:04d}-{t.tm_mon:02d}", calendar.timegm((year, month, 1, 0, 0, 0))
    day_start = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0))
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}", day_start + 86_400


def budget_scope(rule: BudgetRule, route: str, account: Account) -> str:
    key = account.key_id or ANONYMOUS
    if rule.per == "key":
        return f"route:{route}:key:{key}"
    if rule.per == "team":  # a caller without a team is a team of its own
        return f"route:{route}:team:{account.team}" if account.team else f"route:{route}:key:{key}"
    return f"route:{route}"


def rate_scope(rule: RateRule, route: str, account: Account) -> str:
    if rule.per == "key":
        return f"route:{route}:key:{account.key_id or ANONYMOUS}"
    return f"route:{route}"


def reserve_usd(decision: Decision) -> float:
    """What a request may cost at most, as estimated: each tier's costliest candidate (a
    cascade may pay for every tier; inside a tier only one answer is paid for)."""
    return sum(max(c.estimate.cost_usd for c in tier) for tier in decision.tiers)


@dataclass(slots=True)
class Ticket:
    """What a request holds until its record settles it."""

    budget_keys: tuple[str, ...]
    rate_keys: tuple[str, ...]
    tokens: int  # the tokens charged at admission


class Shortfall(NamedTuple):
    """The budget is short for this decision; ``left_usd`` is what remains of it."""

    left_usd: float
    details: dict[str, Any]


def _hold_s(route: Route) -> float:
    """How long an unsettled reservation holds its budget (its replica may have died)."""
    return max(300.0, 2 * route.timeouts.total_ms / 1000)


class Admission:
    """Rate limits and budgets of a policy's routes, counted in ``counters``."""

    def __init__(
        self,
        counters: Counters,
        *,
        clock: Callable[[], float] = time.time,
        on_error: ErrorHook | None = None,
        quiet_s: float = 10.0,
    ) -> None:
        self.counters = counters
        self._clock = clock  # epoch seconds: budgets' periods are calendar days and months
        self._on_error = on_error
        self._quiet_s = quiet_s
        self._logged: dict[str, float] = {}
        self._held: dict[str, Ticket] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self.errors = 0  # operations that could not reach the counters

    def _failed(self, operation: str, fail_open: bool, exc: BaseException) -> None:
        self.errors += 1
        outcome = "open" if fail_open else "closed"
        if self._on_error is not None:
            self._on_error(operation, outcome)
        now = time.monotonic()
        if now - self._logged.get(operation, -self._quiet_s) >= self._quiet_s:
            self._logged[operation] = now
            log.warning(
                "shared state unreachable (%s: %s): %s failing %s",
                type(exc).__name__, exc, operation, outcome,
            )  # fmt: skip

    def budgets(self, route: Route, account: Account) -> list[tuple[str, BudgetRule, str]]:
        """The budgets a request spends from: (counter key, rule, whose), the route's then
        the caller key's own."""
        now = self._clock()
        out = []
        if route.budget is not None:
            name, _ = period_of(route.budget, now)
            scope = budget_scope(route.budget, route.name, account)
            out.append((f"budget:{scope}:{name}", route.budget, f"route {route.name!r}"))
        if account.budget is not None and account.key_id is not None:
            name, _ = period_of(account.budget, now)
            out.append((f"budget:key:{account.key_id}:{name}", account.budget, "this API key"))
        return out

    async def admit(
        self,
        route: Route,
        account: Account,
        decision: Decision,
        request_id: str,
        model: Model | None = None,
    ) -> Shortfall | None:
        """Reserve the decision's estimated cost in every budget and take the request from
        every rate limit (``model``'s too: the one the decision calls first), all in one
        call to the counters (one Redis script) and all or nothing. ``None``: admitted (or
        nothing applies); a ``Shortfall`` when a budget is short (to degrade or refuse);
        ``RateLimitedError`` when a rate limit is full."""
        budgets = self.budgets(route, account)
        rates = self.rates(route, account, model)
        if not budgets and not rates:
            return None
        now, usd = self._clock(), reserve_usd(decision)
        tokens = decision.prompt_tokens + decision.output_tokens
        try:
            verdict = await self.counters.admit(
                _budget_checks(budgets, now), request_id, usd, _hold_s(route),
                _rate_checks(rates), tokens,
            )  # fmt: skip
        except Exception as exc:  # any client error: Redis down, timeouts, protocol
            self._budget_unreachable(budgets, usd, now, exc)
            self._rate_unreachable(rates, exc)
            return None
        if not verdict.budget.admitted:
            return self._shortfall(budgets, verdict.budget, usd, now)
        if not verdict.rate.admitted:
            _, rule, whose = rates[verdict.rate.refused]
            raise _rate_error(whose, rule, "over its rate limit", verdict.rate.retry_after_s)
        self._took(request_id, budgets, rates, tokens)
        return None

    async def reserve(
        self, route: Route, account: Account, decision: Decision, request_id: str
    ) -> Shortfall | None:
        """Reserve the decision's estimated cost in every budget that applies (``None``:
        done, or no budget); a shortfall says what is left, to degrade or refuse."""
        budgets = self.budgets(route, account)
        if not budgets:
            return None
        now, usd = self._clock(), reserve_usd(decision)
        checks = _budget_checks(budgets, now)
        try:
            verdict = await self.counters.reserve(checks, request_id, usd, _hold_s(route))
        except Exception as exc:  # any client error: Redis down, timeouts, protocol
            self._budget_unreachable(budgets, usd, now, exc)
            return None
        if verdict.admitted:
            self._took(request_id, budgets, [], 0)
            return None
        return self._shortfall(budgets, verdict, usd, now)

    def _budget_unreachable(
        self, budgets: list[tuple[str, BudgetRule, str]], usd: float, now: float, exc: Exception
    ) -> None:
        """The counters failed: admit (each budget fails open) or refuse."""
        if not budgets:
            return
        fail_open = all(rule.fail_open for _, rule, _ in budgets)
        self._failed("budget", fail_open, exc)
        if fail_open:
            return
        _, rule, whose = next(b for b in budgets if not b[1].fail_open)
        raise BudgetExceededError(
            f"{whose}: its budget cannot be checked now (shared state unreachable) and "
            "it is set to refuse then",
            {"budget": _budget_details(rule, period_of(rule, now)[0], None, usd, whose)},
            5.0,
        ) from None

    def _rate_unreachable(self, rates: list[tuple[str, RateRule, str]], exc: Exception) -> None:
        if not rates:
            return
        fail_open = all(rule.fail_open for _, rule, _ in rates)
        self._failed("rate_limit", fail_open, exc)
        if not fail_open:
            _, rule, whose = next(r for r in rates if not r[1].fail_open)
            raise _rate_error(whose, rule, "its rate limit cannot be checked now", 1.0) from None

    def _shortfall(
        self,
        budgets: list[tuple[str, BudgetRule, str]],
        verdict: BudgetVerdict,
        usd: float,
        now: float,
    ) -> Shortfall:
        _, rule, whose = budgets[verdict.refused]
        name, ends = period_of(rule, now)
        left = verdict.left_usd[verdict.refused]
        return Shortfall(left, {"budget": _budget_details(rule, name, left, usd, whose, ends)})

    def _took(
        self,
        request_id: str,
        budgets: list[tuple[str, BudgetRule, str]],
        rates: list[tuple[str, RateRule, str]],
        tokens: int,
    ) -> None:
        """What the request holds until its record settles it."""
        ticket = self._ticket(request_id)
        ticket.budget_keys += tuple(k for k, _, _ in budgets)
        if rates:
            ticket.rate_keys += tuple(k for k, _, _ in rates)
            ticket.tokens = tokens

    def refuse_budget(self, route: Route, shortfall: Shortfall) -> BudgetExceededError:
        budget = shortfall.details["budget"]
        return BudgetExceededError(
            f"{budget['of']}: over its {_ADVERB[budget['period']]} budget of "
            f"${budget['usd']:.2f} (${max(0.0, shortfall.left_usd):.4f} left; this request "
            f"is estimated at ${budget['estimated_usd']:.4f})",
            shortfall.details,
            max(1.0, budget["resets_at"] - self._clock()),
        )

    def rates(
        self, route: Route, account: Account, model: Model | None = None
    ) -> list[tuple[str, RateRule, str]]:
        """The rate limits a request takes from: (counter key, rule, whose), the route's,
        the caller key's own, then those of ``model`` (the one it calls first)."""
        out = []
        if route.rate_limit is not None:
            scope = rate_scope(route.rate_limit, route.name, account)
            out.append((f"rate:{scope}", route.rate_limit, f"route {route.name!r}"))
        if account.rate is not None and account.key_id is not None:
            out.append((f"rate:key:{account.key_id}", account.rate, "this API key"))
        if model is not None and model.rate_limit is not None:
            scope = f"model:{model.name}"
            if model.rate_limit.per == "key":
                scope += f":key:{account.key_id or ANONYMOUS}"
            out.append((f"rate:{scope}", model.rate_limit, f"model {model.name!r}"))
        return out

    async def rate(
        self,
        route: Route,
        account: Account,
        decision: Decision,
        request_id: str,
        model: Model | None = None,
    ) -> None:
        """Take the request from every rate limit that applies (all or none), or raise
        ``RateLimitedError``. ``model``: the model the decision calls first, whose own
        limit applies too (fallbacks and escalations to other models are not counted)."""
        rates = self.rates(route, account, model)
        if not rates:
            return
        tokens = decision.prompt_tokens + decision.output_tokens
        try:
            verdict = await self.counters.rate(_rate_checks(rates), tokens)
        except Exception as exc:
            self._rate_unreachable(rates, exc)
            return
        if not verdict.admitted:
            _, rule, whose = rates[verdict.refused]
            raise _rate_error(whose, rule, "over its rate limit", verdict.retry_after_s)
        self._took(request_id, [], rates, tokens)

    def _ticket(self, request_id: str) -> Ticket:
        ticket = self._held.get(request_id)
        if ticket is None:
            ticket = self._held[request_id] = Ticket((), (), 0)
        return ticket

    def held(self) -> int:
        """Requests admitted and not yet settled."""
        return len(self._held)

    # -- settling: a record sink ----------------------------------------------------------

    def submit(self, record: RequestRecord) -> None:
        ticket = self._held.pop(record.request_id, None)
        if ticket is None:
            return
        usage = record.usage
        used = 0 if usage is None else usage.input_tokens + usage.output_tokens
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a stream dropped outside the loop: the reservation lapses
            return
        task = loop.create_task(
            self._settle(ticket, record.request_id, record.cost_usd or 0.0, used - ticket.tokens)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _settle(self, ticket: Ticket, request_id: str, usd: float, extra: int) -> None:
        try:  # one call (one Redis script) for the budgets and the rate limits
            await self.counters.finish(ticket.budget_keys, request_id, usd, ticket.rate_keys, extra)
        except Exception as exc:
            # The reservation lapses on its own; the actual spend is not counted.
            self._failed("settle", True, exc)

    async def settled(self) -> None:
        """Wait for the settlements under way."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def close(self) -> None:
        """Wait for the settlements under way, then close the counters."""
        await self.settled()
        await self.counters.aclose()


def _budget_checks(budgets: list[tuple[str, BudgetRule, str]], now: float) -> list[BudgetCheck]:
    return [BudgetCheck(k, rule.usd, period_of(rule, now)[1] + 86_400) for k, rule, _ in budgets]


def _rate_checks(rates: list[tuple[str, RateRule, str]]) -> list[RateCheck]:
    return [RateCheck(k, r.requests_per_minute, r.tokens_per_minute) for k, r, _ in rates]


def _rate_error(whose: str, rule: RateRule, why: str, retry_s: float) -> RateLimitedError:
    limits = {
        "of": whose,
        "requests_per_minute": rule.requests_per_minute,
        "tokens_per_minute": rule.tokens_per_minute,
        "per": rule.per,
    }
    return RateLimitedError(f"{whose}: {why}", {"rate_limit": limits}, retry_s)


def _budget_details(
    rule: BudgetRule,
    period: str,
    left: float | None,
    usd: float,
    whose: str,
    ends: float | None = None,
) -> dict[str, Any]:
    return {
        "of": whose,
        "usd": rule.usd,
        "period": rule.period,
        "current_period": period,
        "per": rule.per,
        "left_usd": None if left is None else max(0.0, round(left, 6)),
        "estimated_usd": round(usd, 6),
        "resets_at": ends,
        "on_budget": rule.on_budget,
    }


def has_limits(route: Route) -> bool:
    return route.rate_limit is not None or route.budget is not None


def model_limited(models: Mapping[str, Model], decision: Decision) -> Model | None:
    """The model the decision calls first, if it has a rate limit of its own."""
    chosen = decision.chosen
    model = models.get(chosen) if chosen is not None else None
    return model if model is not None and model.rate_limit is not None else None


def limited_routes(routes: Sequence[Route]) -> list[str]:
    return [r.name for r in routes if has_limits(r)]
