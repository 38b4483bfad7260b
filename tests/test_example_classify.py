"""The classification cascade with a shadow comparison (examples/classify-cascade.yaml),
served as the README serves it, against its simulator. Tickets are drawn evenly from the
ten kinds of the simulator's answer table; what the table implies (which kinds escalate,
which final labels are right, what each request costs, which shadow labels agree) is
worked out from the table and the policy, and the served traffic must agree with it:
exactly request by request, and for the shares within a binomial test at ``ALPHA``."""

from __future__ import annotations

import asyncio
import fcntl
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from scipy.stats import binomtest, ttest_1samp

from modelroute import load_policy
from modelroute.outcomes import OutcomeSource
from modelroute.records.stores.sqlite import SqliteStore
from modelroute.testing import SimulatorConfig
from modelroute.testing.sim_engine import estimate_prompt_tokens

from .conftest import EXAMPLES, ROOT
from .gateway.harness import free_port

README = (ROOT / "README.md").read_text()
POLICY = EXAMPLES / "classify-cascade.yaml"
SIM = SimulatorConfig.from_yaml(EXAMPLES / "simulator" / "classify-cascade.yaml")
ROUTE = "ticket-triage"
ALPHA = 0.001  # each share's two-sided binomial test; the intervals shown are 99.9%
N = 300
PATIENCE_S = 60.0
# The ticket kinds (the table's match phrases) and their true labels.
TRUTH = {
    "charged twice": "billing",
    "refund": "billing",
    "invoice address": "billing",
    "app crashes": "bug",
    "error 500": "bug",
    "button does nothing": "bug",
    "reset my password": "account",
    "delete my account": "account",
    "change my email": "account",
    "opening hours": "other",
}


@dataclass(frozen=True)
class Implied:
    """What the answer table and the policy imply for one kind of ticket."""

    escalates: bool
    final: str
    cost_usd: float  # of one request with this prompt
    shadow: str  # nano's label


def _answer(model_id: str, kind: str) -> tuple[str, float]:
    row = next(a for a in SIM.models[model_id].answers if a.match == kind)
    return row.content, row.logprob


def _implied(kind: str, prompt: str) -> Implied:
    policy = load_policy(POLICY)
    route = policy.routes[ROUTE]
    assert route.confidence is not None
    label, logprob = _answer("classifier-v1", kind)
    # label_probability of a one-word label: the probability of its one token
    escalates = math.exp(logprob) < route.confidence.threshold
    tokens = estimate_prompt_tokens([prompt], 1)  # the simulator's usage, one token per word

    def cost(name: str) -> float:
        prices = policy.models[name].prices
        return (tokens * prices.input + 1 * prices.output) / 1e6

    final = _answer("large-v1", kind)[0] if escalates else label
    total = cost("classifier") + (cost("large") if escalates else 0.0)
    return Implied(escalates, final, total, _answer("nano-v1", kind)[0])


def _prompt(number: int, kind: str) -> str:
    return (
        "Label this support ticket as billing, bug, account or other.\n"
        f"Ticket #{number:05d}: Hello, about the {kind} issue I wrote about, please help."
    )


@pytest.fixture
def simulator_port() -> Iterator[None]:
    """The example's simulator port (8901, as written), for this test alone."""
    with (Path(tempfile.gettempdir()) / "modelroute-tests-port-8901.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _serve_line() -> str:
    found = re.search(r"<!-- readme:shadow -->\n```bash\n(.*?)```", README, re.S)
    assert found, "README lost its readme:shadow block"
    [line] = [x for x in found.group(1).splitlines() if x.startswith("modelroute serve")]
    return re.sub(r"\s+#.*$", "", line)


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while True:
        assert proc.poll() is None, "modelroute serve exited"
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            assert time.monotonic() < deadline, f"{url} did not come up"
            time.sleep(0.1)


def _shadow_metrics(base: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("modelroute_shadow_"):
                out[sample.name] = out.get(sample.name, 0.0) + sample.value
    return out


def _settled(base: str, proc: subprocess.Popen[bytes]) -> dict[str, float]:
    """The shadow metrics once every sampled request's comparison is stored."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        assert proc.poll() is None, "modelroute serve exited"
        m = _shadow_metrics(base)
        sent = m.get("modelroute_shadow_requests_total", 0.0)
        stored = m.get("modelroute_shadow_outcomes_total")
        if sent and stored == sent and m.get("modelroute_shadow_pending") == 0:
            return m
        assert time.monotonic() < deadline, m
        time.sleep(0.1)


def _traffic(base: str) -> list[tuple[str, str, str]]:
    """N tickets, kinds drawn evenly at random: (kind, prompt, request id) of each."""
    rng = np.random.default_rng(20261206)
    kinds = list(TRUTH)
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
    sent = []
    for number in range(N):
        kind = kinds[int(rng.integers(len(kinds)))]
        prompt = _prompt(number, kind)
        reply = client.chat.completions.with_raw_response.create(
            model=ROUTE, messages=[{"role": "user", "content": prompt}]
        )
        sent.append((kind, prompt, reply.headers["x-modelroute-request-id"]))
    client.close()
    return sent


def _share(hits: int, n: int, implied: float, what: str) -> None:
    test = binomtest(hits, n, implied)
    ci = test.proportion_ci(1 - ALPHA, method="wilson")
    seen = f"{what}: {hits}/{n} = {hits / n:.3f} [{ci.low:.3f}, {ci.high:.3f}], implied {implied}"
    print(seen)
    assert test.pvalue > ALPHA, seen


async def _stored(db: Path, ids: list[str]) -> tuple[list[dict[str, Any]], list[Any]]:
    store = SqliteStore(db)
    await store.open()
    try:
        records = [await store.get(request_id) for request_id in ids]
        shadows = await store.outcomes(source=OutcomeSource.SHADOW, route=ROUTE)
    finally:
        await store.close()
    assert all(r is not None for r in records)
    return [r for r in records if r is not None], shadows


def test_the_example_cascade_and_its_shadow_do_what_the_answer_table_implies(
    tmp_path: Path, simulator_port: None
) -> None:
    port = free_port()
    db = tmp_path / "records.db"
    argv = [*shlex.split(_serve_line()), "--port", str(port), "--store", str(db)]
    argv += ["--spool-dir", str(tmp_path / "spool")]
    modelroute = str(Path(sys.executable).parent / "modelroute")
    proc = subprocess.Popen([modelroute, *argv[1:]], cwd=ROOT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{base}/readyz", proc)
        sent = _traffic(base)
        metrics = _settled(base, proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the queues drain before it exits
            proc.wait(60)
    records, shadows = asyncio.run(_stored(db, [request_id for _, _, request_id in sent]))
    implied = {request_id: _implied(kind, prompt) for kind, prompt, request_id in sent}
    truth = {request_id: TRUTH[kind] for kind, _, request_id in sent}
    kinds = [_implied(kind, _prompt(0, kind)) for kind in TRUTH]

    # Request by request, exactly what the table says.
    for record in records:
        expected = implied[record["request_id"]]
        assert (record["escalations"] > 0) == expected.escalates, record["prompt"]
        assert record["answer"] == expected.final
        assert record["cost_usd"] == pytest.approx(expected.cost_usd, rel=1e-9)
    # The shares, against the population the tickets were drawn from.
    escalated = sum(1 for r in records if r["escalations"] > 0)
    _share(escalated, N, sum(k.escalates for k in kinds) / len(kinds), "escalated")
    right = sum(1 for r in records if r["answer"] == truth[r["request_id"]])
    accuracy = sum(k.final == label for k, label in zip(kinds, TRUTH.values(), strict=True))
    _share(right, N, accuracy / len(kinds), "accuracy")
    costs = [r["cost_usd"] for r in records]
    mean_cost = float(np.mean([k.cost_usd for k in kinds]))
    assert ttest_1samp(costs, mean_cost).pvalue > ALPHA, (np.mean(costs), mean_cost)

    # The shadow: a fifth of the requests, each compared by agreement with the client's label.
    _share(len(shadows), N, 0.2, "shadowed")
    assert len({o.request_id for o in shadows}) == len(shadows)
    for outcome in shadows:
        expected = implied[outcome.request_id]
        assert outcome.model == "nano" and outcome.grader == "agreement"
        assert outcome.score == (1.0 if expected.shadow == expected.final else 0.0)
        assert outcome.reported_model == "nano-v1-2025-01-15"
        assert "label_probability" in outcome.confidences
    agreed = sum(1 for o in shadows if o.score == 1.0)
    agreement = sum(k.shadow == k.final for k in kinds) / len(kinds)
    _share(agreed, len(shadows), agreement, "nano agrees")
    assert metrics["modelroute_shadow_outcomes_total"] == len(shadows)
    spend = sum(o.cost_usd or 0.0 for o in shadows)
    assert metrics["modelroute_shadow_cost_usd_total"] == pytest.approx(spend, rel=1e-9)
    assert spend <= 2.0  # the example's daily budget
    # The shadow never answered a client: every record is the cascade's own.
    assert {a["model"] for r in records for a in r["attempts"]} <= {"classifier", "large"}
