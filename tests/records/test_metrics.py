"""MetricsSink: the exposition parses and every count and sum matches the records."""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter as Tally
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from modelroute.records.metrics import (
    LATENCY_BUCKETS,
    MetricsSink,
    is_fallback,
    mark_worker_dead,
    multiprocess_enabled,
)
from modelroute.records.record import RequestRecord

from .samples import FALLBACK, SAMPLES, all_records, attempt, record

Key = tuple[str, frozenset[tuple[str, str]]]
KINDS = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cached_input": "cached_input_tokens",
    "cache_write": "cache_write_tokens",
    "reasoning": "reasoning_tokens",
}


def scrape(text: str) -> dict[Key, float]:
    samples: dict[Key, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.endswith("_created"):
                continue
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def key(name: str, **labels: str) -> Key:
    return (name, frozenset(labels.items()))


def expected(records: Iterable[RequestRecord]) -> dict[Key, float]:
    """What the metrics must say, computed from the records by the documented rules."""
    want: Tally[Key] = Tally()
    floats: dict[Key, float] = {}
    for r in records:
        route, model = r.route or "", r.final_model or ""
        want[key("modelroute_requests_total", route=route, model=model, status=r.status)] += 1
        if r.failure:
            want[key("modelroute_errors_total", route=route, model=model, failure=r.failure)] += 1
        if r.price_unknown:
            want[key("modelroute_unpriced_requests_total", route=route, model=model)] += 1
        if r.escalations:
            want[key("modelroute_escalations_total", route=route, model=model)] += r.escalations
        for name, value in _histogram("modelroute_request_latency_seconds", r.latency_ms):
            want[key(name, route=route, model=model, **value)] += 1
        if r.streamed and r.ttft_ms is not None:
            for name, value in _histogram("modelroute_ttft_seconds", r.ttft_ms):
                want[key(name, route=route, model=model, **value)] += 1
        for f, v in (
            ("modelroute_request_latency_seconds_sum", r.latency_ms),
            ("modelroute_ttft_seconds_sum", r.ttft_ms if r.streamed else None),
        ):
            if v is not None:
                k = key(f, route=route, model=model)
                floats[k] = floats.get(k, 0.0) + v / 1000
        for a in r.attempts:
            if a.outcome == "failed":
                k = key(
                    "modelroute_attempt_failures_total",
                    route=route,
                    model=a.model,
                    failure=a.failure or "unknown",
                )
                want[k] += 1
            if a.usage is not None:
                for kind, field in KINDS.items():
                    want[key("modelroute_tokens_total", route=route, model=a.model, kind=kind)] += (
                        getattr(a.usage, field)
                    )
            if a.cost_usd:
                k = key("modelroute_cost_usd_total", route=route, model=a.model)
                floats[k] = floats.get(k, 0.0) + a.cost_usd
    return {**{k: float(v) for k, v in want.items()}, **floats}


def _histogram(name: str, ms: float) -> list[tuple[str, dict[str, str]]]:
    seconds = ms / 1000
    out = [(f"{name}_count", {})]
    for bound in (*LATENCY_BUCKETS, float("inf")):
        if seconds <= bound:
            le = "+Inf" if bound == float("inf") else repr(float(bound))
            out.append((f"{name}_bucket", {"le": le}))
    return out


def check(samples: dict[Key, float], records: list[RequestRecord]) -> None:
    want = expected(records)
    for k, value in want.items():
        if value == 0 and k not in samples:
            continue  # zero token counts are never incremented, so they may be absent
        assert samples.get(k) == pytest.approx(value, rel=1e-12, abs=1e-15), k
    # nothing counted that the records do not account for
    for k, value in samples.items():
        name = k[0]
        if name.startswith(("modelroute_circuit", "modelroute_record_", "modelroute_fallbacks")):
            continue
        if name.endswith("_bucket") and k not in want:
            assert value == 0, k  # an empty bucket below the observed values
            continue
        assert k in want or value == 0, k
    fallbacks = Tally(
        (r.route or "", r.final_model or "") for r in records if r.request_id in _fallback_ids()
    )
    got = {
        (dict(k[1])["route"], dict(k[1])["model"]): v
        for k, v in samples.items()
        if k[0] == "modelroute_fallbacks_total" and v
    }
    assert got == {k: float(v) for k, v in fallbacks.items()}


def _fallback_ids() -> set[str]:
    return {SAMPLES[name]().request_id for name in FALLBACK}


def test_every_count_and_sum_matches_the_records() -> None:
    records = all_records()
    sink = MetricsSink()
    for r in records:
        sink.submit(r)
    body, content_type = sink.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    samples = scrape(body.decode())
    check(samples, records)
    total = sum(v for k, v in samples.items() if k[0] == "modelroute_requests_total")
    assert total == len(records)
    cost = sum(v for k, v in samples.items() if k[0] == "modelroute_cost_usd_total")
    assert cost == pytest.approx(sum(r.cost_usd for r in records), rel=1e-12)
    failed = key("modelroute_errors_total", route="support", model="", failure="timeout")
    assert samples[failed] == 1
    rejected = key("modelroute_requests_total", route="", model="", status="rejected")
    assert samples[rejected] == 1


def test_submitting_twice_doubles_every_counter() -> None:
    records = all_records()
    sink = MetricsSink()
    for r in records + records:
        sink.submit(r)
    check(scrape(sink.render()[0].decode()), records + records)


def test_each_sink_has_its_own_registry() -> None:
    one, two = MetricsSink(), MetricsSink()
    one.submit(SAMPLES["success"]())
    assert "modelroute_requests_total{" in one.render()[0].decode()
    assert "modelroute_requests_total{" not in two.render()[0].decode()


def test_openmetrics_when_asked() -> None:
    sink = MetricsSink()
    sink.submit(SAMPLES["stream"]())
    body, content_type = sink.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    names = {s.name for f in openmetrics_families(body.decode()) for s in f.samples}
    assert "modelroute_ttft_seconds_count" in names


def test_gauges_are_read_at_scrape_time() -> None:
    states = {"small": "closed", "big": "open", "mid": "half_open", "odd": "weird"}
    depth = [3]
    sink = MetricsSink(circuit_states=lambda: states, queue_depth=lambda: depth[0])
    samples = scrape(sink.render()[0].decode())
    assert samples[key("modelroute_circuit_state", model="small")] == 0
    assert samples[key("modelroute_circuit_state", model="mid")] == 1
    assert samples[key("modelroute_circuit_state", model="big")] == 2
    assert key("modelroute_circuit_state", model="odd") not in samples
    assert samples[key("modelroute_record_queue_depth")] == 3
    assert not any(k[0] == "modelroute_record_spool_size" for k in samples)
    states["big"], depth[0] = "closed", 0
    sink.watch(spool_size=lambda: 12)
    samples = scrape(sink.render()[0].decode())
    assert samples[key("modelroute_circuit_state", model="big")] == 0
    assert samples[key("modelroute_record_queue_depth")] == 0
    assert samples[key("modelroute_record_spool_size")] == 12


def test_a_failing_gauge_source_keeps_the_last_value(caplog: pytest.LogCaptureFixture) -> None:
    calls = [0]

    def depth() -> int:
        calls[0] += 1
        if calls[0] > 1:
            raise OSError("queue gone")
        return 5

    sink = MetricsSink(queue_depth=depth)
    for _ in range(3):
        samples = scrape(sink.render()[0].decode())
        assert samples[key("modelroute_record_queue_depth")] == 5
    assert sum("queue_depth" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_fallback_flag_of_each_sample(name: str) -> None:
    assert is_fallback(SAMPLES[name]()) is (name in FALLBACK)


def test_fallback_rules() -> None:
    ok = {"outcome": "ok"}
    retried = record(
        20,
        [attempt("a", outcome="failed", failure="timeout"), attempt("a", **ok)],
        1.0,
        final_model="a",
    )
    skipped = record(
        21, [attempt("a", outcome="skipped"), attempt("b", **ok)], 1.0, final_model="b"
    )
    hedge = record(
        22, [attempt("a", outcome="cancelled"), attempt("b", **ok)], 1.0, final_model="b"
    )
    cascade = record(
        23, [attempt("a", outcome="low_confidence"), attempt("b", tier=1)], 1.0, final_model="b"
    )
    doubted = record(
        24,
        [attempt("a", outcome="low_confidence"), attempt("b", tier=1, outcome="failed")],
        1.0,
        final_model="a",
    )
    escalated_then_fell_back = record(
        25,
        [
            attempt("a", outcome="low_confidence"),
            attempt("b", tier=1, outcome="failed"),
            attempt("c", tier=1),
        ],
        1.0,
        final_model="c",
    )
    no_answer = record(26, [attempt("a", outcome="failed")], 1.0)
    assert not is_fallback(retried)
    assert is_fallback(skipped)
    assert is_fallback(hedge)
    assert not is_fallback(cascade)
    assert not is_fallback(doubted)
    assert is_fallback(escalated_then_fell_back)
    assert not is_fallback(no_answer)


# -- multi-process mode: each worker process writes its own files, render() sums them --------


def _worker(names: list[str], states: dict[str, str], depth: int) -> None:
    sink = MetricsSink(circuit_states=lambda: states, queue_depth=lambda: depth, multiprocess=True)
    for name in names:
        sink.submit(SAMPLES[name]())


def _render() -> tuple[str, bool]:
    return MetricsSink(multiprocess=True).render()[0].decode(), multiprocess_enabled()


def _spawned(ctx: multiprocessing.context.SpawnContext, *args: object) -> int:
    proc = ctx.Process(target=_worker, args=args)
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    assert proc.pid is not None
    return proc.pid


def test_multiprocess_render_aggregates_every_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    ctx = multiprocessing.get_context("spawn")
    names = sorted(SAMPLES)
    first = _spawned(ctx, names[:4], {"small": "closed", "big": "open"}, 3)
    _spawned(ctx, names[4:], {"small": "half_open", "big": "closed"}, 4)
    assert len(list(tmp_path.glob("counter_*.db"))) == 2
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        text, enabled = pool.submit(_render).result(timeout=60)
        assert enabled
        samples = scrape(text)
        check(samples, all_records())
        assert samples[key("modelroute_circuit_state", model="small")] == 1  # worst of workers
        assert samples[key("modelroute_circuit_state", model="big")] == 2
        assert samples[key("modelroute_record_queue_depth")] == 7  # summed over workers
        mark_worker_dead(first, str(tmp_path))
        samples = scrape(pool.submit(_render).result(timeout=60)[0])
    assert samples[key("modelroute_record_queue_depth")] == 4
    assert samples[key("modelroute_circuit_state", model="big")] == 0
    check(samples, all_records())  # a dead worker's counters stay counted


def test_multiprocess_needs_the_directory_before_import() -> None:
    if multiprocess_enabled():
        pytest.skip("this test process runs in multi-process mode")
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    with pytest.raises(RuntimeError, match="PROMETHEUS_MULTIPROC_DIR"):
        MetricsSink(multiprocess=True)
