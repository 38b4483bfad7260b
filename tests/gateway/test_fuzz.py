"""Bad-input fuzzing of the HTTP API with schemathesis, from the gateway's own OpenAPI document.

The real gateway (uvicorn, in the test's event loop) routes to a healthy simulator. A worker
thread fetches ``/openapi.json`` and sends what schemathesis generates from it over real
sockets, in two phases, as ``st run`` would:

- coverage: schemathesis' deterministic cases, valid and invalid: every field missing, of the
  wrong type, at and past its bounds, unknown enum values, undeclared methods;
- fuzzing: Hypothesis-generated requests, valid and invalid, derandomized so CI sees the same
  cases on every run.

Every answer is checked: never a 5xx (the upstream is healthy, so not even 502/503/504), never
a hang, every error in the endpoint's own format, every answer a valid completion, message or
stream, and all of it conforming to the document.

``/v1/responses`` is fuzzed on a policy with one model that serves the Responses API (its
route forwards requests as sent) and others that only the Chat Completions bridge reaches;
the stored responses' endpoints with ids that name none (404) and paging parameters valid or
not (400).

The document is fuzzed in three variants: as served; without the routing headers, so invalid
bodies are not all stopped by an invalid header first; and with ``stream`` required, so
invalid bodies reach the streaming path too.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from pydantic import ValidationError
from schemathesis import BaseSchema, Case, GenerationMode

from modelroute.server.openapi import openapi_spec

from .fixtures import sim_config
from .fuzz_checks import check
from .fuzz_document import CHAT, COUNT, GETS, MESSAGES, RESPONSES_DOOR, ROUTED, STORED, variants
from .harness import gateway
from .native_policy import with_native

# The shared policy, plus a model whose upstream serves the Responses API and its own route.
FUZZ_POLICY = with_native("  served:\n    strategy: {kind: fixed, models: [native]}\n")

POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE

# Hypothesis examples per (variant, operation, mode). An operation with nothing to vary (the
# GET endpoints) stops after its one distinct case, so the executed total is what is asserted.
FUZZ: dict[tuple[str, str], dict[GenerationMode, int]] = {
    ("served", CHAT): {POSITIVE: 140, NEGATIVE: 130},
    ("body", CHAT): {POSITIVE: 110, NEGATIVE: 160},
    ("streamed", CHAT): {POSITIVE: 60, NEGATIVE: 70},
    ("served", MESSAGES): {POSITIVE: 70, NEGATIVE: 70},
    ("body", MESSAGES): {POSITIVE: 60, NEGATIVE: 90},
    ("streamed", MESSAGES): {POSITIVE: 40, NEGATIVE: 40},
    ("body", COUNT): {POSITIVE: 30, NEGATIVE: 40},
    ("served", RESPONSES_DOOR): {POSITIVE: 50, NEGATIVE: 50},
    ("body", RESPONSES_DOOR): {POSITIVE: 70, NEGATIVE: 90},
    ("streamed", RESPONSES_DOOR): {POSITIVE: 40, NEGATIVE: 40},
    **{("served", label): {POSITIVE: 5} for label in GETS},
    **{("served", label): {POSITIVE: 10} for label in STORED},
    ("served", STORED[2]): {POSITIVE: 10, NEGATIVE: 20},  # paging: the one thing to get wrong
}
# Coverage cases of the served document's body fields would all carry the minimal header
# values (a 0 USD cost ceiling) and stop at 422; the header-less variants reach the upstreams.
COVERAGE = (
    [("served", label) for label in (*GETS, *STORED)]
    + [(variant, label) for variant in ("body", "streamed") for label in ROUTED]
    + [("body", COUNT)]
)
MIN_FUZZED = 1000
# Deeper local runs: MODELROUTE_FUZZ_SCALE=10 multiplies every fuzzing budget (and the time).
SCALE = float(os.environ.get("MODELROUTE_FUZZ_SCALE", "1"))
TIMEOUT_S = 5.0  # per request: connect and read, and the whole exchange by the wall clock


def _fast_sim() -> dict[str, Any]:
    quick = {"latency_ms": {"p50": 1}, "ttft_ms": {"p50": 1}}
    return sim_config(**{name: quick for name in ("primary-sim", "secondary-sim", "claude-sim")})


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Tally:
    fuzzed: int = 0
    covered: int = 0
    routed: int = 0  # requests that reached a routed endpoint with its own method
    statuses: Counter[tuple[str, str, str, int]] = field(default_factory=Counter)


@dataclass
class Runner:
    url: str
    session: requests.Session
    tally: Tally

    def send(self, phase: str, variant: str, label: str, case: Case[Any]) -> None:
        started = time.monotonic()
        response = case.call(base_url=self.url, session=self.session, timeout=TIMEOUT_S)
        took = time.monotonic() - started
        mode = case.meta.generation.mode.value if case.meta is not None else "?"
        self.tally.statuses[f"{phase}/{variant}", label, mode, response.status_code] += 1
        if label in ROUTED and case.method.upper() == "POST":
            self.tally.routed += 1
        try:
            assert took < TIMEOUT_S, f"took {took:.1f} s"
            check(label, case, response)
        except (AssertionError, ValidationError) as exc:
            exc.add_note(f"{phase}/{variant}: reproduce with: {case.as_curl_command()}")
            raise

    def coverage(self, schema: BaseSchema, variant: str, label: str) -> None:
        method, path = label.split(" ")
        operation = schema[path][method]
        cases = schema.iter_coverage_cases(
            operation,
            generation_modes=[POSITIVE, NEGATIVE],
            generation_config=schema.config.generation_for(operation=operation),
        )
        for case in cases:
            self.tally.covered += 1
            self.send("coverage", variant, label, case)

    def fuzz(
        self, schema: BaseSchema, variant: str, label: str, mode: GenerationMode, n: int
    ) -> None:
        method, path = label.split(" ")
        strategy = schema[path][method].as_strategy(generation_mode=mode)

        @settings(
            max_examples=n,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        )
        @given(case=strategy)
        def one(case: Case[Any]) -> None:
            self.tally.fuzzed += 1
            self.send("fuzz", variant, label, case)

        one()


def _fuzz(url: str) -> Tally:
    """Runs in a worker thread: blocking HTTP while the gateway serves on the test's loop."""
    served = requests.get(f"{url}/openapi.json", timeout=TIMEOUT_S).json()
    assert served == openapi_spec()
    config = schemathesis.Config.from_dict(
        {"request-timeout": TIMEOUT_S, "max-stream-events": 10_000}
    )
    schemas = {
        name: schemathesis.openapi.from_dict(spec, config=config)
        for name, spec in variants(served).items()
    }
    tally = Tally()
    with requests.Session() as session:
        runner = Runner(url, session, tally)
        for variant, label in COVERAGE:
            runner.coverage(schemas[variant], variant, label)
        for (variant, label), budget in FUZZ.items():
            for mode, examples in budget.items():
                runner.fuzz(schemas[variant], variant, label, mode, max(1, round(examples * SCALE)))
    return tally


async def test_fuzz_the_http_api_from_its_openapi_document() -> None:
    started = time.monotonic()
    async with gateway(FUZZ_POLICY, _fast_sim()) as gw:
        tally = await asyncio.to_thread(_fuzz, gw.url)
        records = gw.records()
    summary = "\n".join(f"  {k}: {v}" for k, v in sorted(tally.statuses.items()))
    print(
        f"\n{tally.fuzzed} fuzzed and {tally.covered} coverage cases in "
        f"{time.monotonic() - started:.1f} s, by (phase/variant, operation, mode, status):\n"
        f"{summary}"
    )
    assert tally.fuzzed >= MIN_FUZZED, summary
    # Every request that reached a routed endpoint left exactly one record, refused or not.
    assert len(records) == tally.routed
