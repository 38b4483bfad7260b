"""TracingSink: one span per request, one child per attempt, times and attributes from the
record."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

from modelroute.records.record import RequestRecord
from modelroute.records.tracing import TracingSink, tracing_from_settings

from .samples import SAMPLES, all_records

NS_PER_MS = 1_000_000


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def sink(exporter: InMemorySpanExporter) -> TracingSink:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return TracingSink(provider)


def spans_of(
    exporter: InMemorySpanExporter, record: RequestRecord
) -> tuple[ReadableSpan, list[ReadableSpan]]:
    spans = [
        s
        for s in exporter.get_finished_spans()
        if (s.attributes or {}).get("modelroute.request_id") == record.request_id
    ]
    parents = [s for s in spans if s.parent is None]
    assert len(parents) == 1
    children = [s for s in spans if s.parent is not None]
    children.sort(key=lambda s: (s.attributes or {})["modelroute.attempt.index"])
    return parents[0], children


def attrs(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


def test_one_parent_and_one_child_per_attempt(
    sink: TracingSink, exporter: InMemorySpanExporter
) -> None:
    records = all_records()
    for r in records:
        sink.submit(r)
    assert len(exporter.get_finished_spans()) == sum(1 + len(r.attempts) for r in records)
    trace_ids = set()
    for r in records:
        parent, children = spans_of(exporter, r)
        assert parent.context is not None
        trace_ids.add(parent.context.trace_id)
        assert parent.kind is SpanKind.SERVER
        assert parent.name == (f"chat {r.route}" if r.route else "chat")
        assert len(children) == len(r.attempts)
        for child, attempt in zip(children, r.attempts, strict=True):
            assert child.kind is SpanKind.CLIENT
            assert child.name == f"chat {attempt.model_id}"
            assert child.parent is not None and child.context is not None
            assert child.parent.span_id == parent.context.span_id
            assert child.context.trace_id == parent.context.trace_id
    assert len(trace_ids) == len(records)  # a trace per request


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_start_and_end_times_are_the_records(
    name: str, sink: TracingSink, exporter: InMemorySpanExporter
) -> None:
    r = SAMPLES[name]()
    sink.submit(r)
    parent, children = spans_of(exporter, r)
    assert parent.start_time is not None and parent.end_time is not None
    assert abs(parent.start_time - r.started_at * 1e9) < 1_000  # float seconds: µs precision
    assert parent.end_time - parent.start_time == round(r.latency_ms * NS_PER_MS)
    for child, attempt in zip(children, r.attempts, strict=True):
        assert child.start_time is not None and child.end_time is not None
        assert child.start_time - parent.start_time == round(attempt.started_ms * NS_PER_MS)
        assert child.end_time - child.start_time == round(attempt.latency_ms * NS_PER_MS)


def test_request_span_attributes(sink: TracingSink, exporter: InMemorySpanExporter) -> None:
    r = SAMPLES["success"]()
    sink.submit(r)
    parent, _ = spans_of(exporter, r)
    a = attrs(parent)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == a["gen_ai.system"] == "openai"
    assert a["gen_ai.response.model"] == "small-2025-01-01"
    assert a["gen_ai.usage.input_tokens"] == 100
    assert a["gen_ai.usage.output_tokens"] == 20
    assert a["gen_ai.usage.cache_read.input_tokens"] == 10
    assert a["gen_ai.request.stream"] is False
    assert a["modelroute.route"] == "support"
    assert a["modelroute.request_id"] == r.request_id
    assert a["modelroute.policy_hash"] == "sha256:abc"
    assert a["modelroute.cost_usd"] == pytest.approx(1e-4)
    assert a["modelroute.status"] == "ok"
    assert a["http.response.status_code"] == 200
    assert "error.type" not in a
    assert "gen_ai.response.time_to_first_chunk" not in a  # not a stream
    assert parent.status.status_code is StatusCode.UNSET


def test_attempt_span_attributes(sink: TracingSink, exporter: InMemorySpanExporter) -> None:
    r = SAMPLES["fallback"]()
    sink.submit(r)
    parent, (failed, ok) = spans_of(exporter, r)
    f = attrs(failed)
    assert f["gen_ai.operation.name"] == "chat"
    assert f["gen_ai.request.model"] == "small-id"
    assert f["gen_ai.provider.name"] == "openai"
    assert f["error.type"] == "server_error"
    assert f["modelroute.attempt.outcome"] == "failed"
    assert f["http.response.status_code"] == 500
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == "upstream 500"
    o = attrs(ok)
    assert o["gen_ai.provider.name"] == o["gen_ai.system"] == "anthropic"
    assert o["modelroute.attempt.outcome"] == "ok"
    assert o["modelroute.model"] == "big"
    assert o["modelroute.cost_usd"] == pytest.approx(0.003)
    assert (o["gen_ai.usage.input_tokens"], o["gen_ai.usage.output_tokens"]) == (100, 30)
    assert "error.type" not in o
    assert ok.status.status_code is StatusCode.UNSET
    assert attrs(parent)["gen_ai.provider.name"] == "anthropic"  # the answering model's


def test_stream_escalation_and_failures(sink: TracingSink, exporter: InMemorySpanExporter) -> None:
    for name in ("stream", "escalation", "failure", "stream_error", "rejected", "unpriced"):
        sink.submit(SAMPLES[name]())
    parent, (child,) = spans_of(exporter, SAMPLES["stream"]())
    assert attrs(parent)["gen_ai.request.stream"] is True
    assert attrs(parent)["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.12)
    assert attrs(child)["gen_ai.usage.reasoning.output_tokens"] == 80

    parent, (low, judge, big) = spans_of(exporter, SAMPLES["escalation"]())
    assert attrs(parent)["modelroute.escalations"] == 1
    assert attrs(low)["modelroute.attempt.outcome"] == "low_confidence"
    assert attrs(low)["modelroute.confidence"] == pytest.approx(0.2)
    assert attrs(judge)["modelroute.attempt.tier"] == -1
    assert attrs(judge)["modelroute.attempt.message"] == "verifier"
    assert attrs(big)["gen_ai.usage.cache_write.input_tokens"] == 40
    assert attrs(parent)["gen_ai.usage.input_tokens"] == 280  # summed over attempts

    parent, children = spans_of(exporter, SAMPLES["failure"]())
    assert parent.status.status_code is StatusCode.ERROR
    assert parent.status.description == "timeout: deadline"
    assert attrs(parent)["error.type"] == "timeout"
    assert "gen_ai.provider.name" not in attrs(parent)  # nothing answered
    assert attrs(children[2])["modelroute.attempt.outcome"] == "skipped"
    assert attrs(children[2])["modelroute.attempt.message"] == "circuit open"
    assert children[2].status.status_code is StatusCode.UNSET

    parent, _ = spans_of(exporter, SAMPLES["stream_error"]())
    assert parent.status.status_code is StatusCode.ERROR
    assert attrs(parent)["error.type"] == "server_error"

    parent, children = spans_of(exporter, SAMPLES["rejected"]())
    assert children == [] and parent.name == "chat"
    assert attrs(parent)["error.type"] == "rejected"
    assert parent.status.status_code is StatusCode.UNSET  # the client's mistake
    assert "modelroute.route" not in attrs(parent)

    parent, (child,) = spans_of(exporter, SAMPLES["unpriced"]())
    assert attrs(parent)["modelroute.price_unknown"] is True
    assert attrs(child)["modelroute.price_unknown"] is True


def test_nothing_but_an_ended_span_when_not_sampled(exporter: InMemorySpanExporter) -> None:
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    TracingSink(provider).submit(SAMPLES["fallback"]())
    assert exporter.get_finished_spans() == ()


def test_close_flushes_the_batch(exporter: InMemorySpanExporter) -> None:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    sink = TracingSink(provider)
    sink.submit(SAMPLES["success"]())
    asyncio.run(sink.close())
    assert len(exporter.get_finished_spans()) == 2
    provider.shutdown()


def test_tracing_from_settings(capsys: pytest.CaptureFixture[str]) -> None:
    provider = tracing_from_settings("console", service_name="modelroute-test")
    assert provider.resource.attributes["service.name"] == "modelroute-test"
    TracingSink(provider).submit(SAMPLES["success"]())
    provider.shutdown()
    assert '"modelroute.request_id": "req-1"' in capsys.readouterr().out
    otlp = tracing_from_settings("otlp")  # nothing is sent until a span ends
    otlp.shutdown()
    with pytest.raises(ValueError, match="unknown trace exporter"):
        tracing_from_settings("jaeger")
    with pytest.raises(ValueError, match="sample_ratio"):
        tracing_from_settings("console", sample_ratio=1.5)


def test_sample_ratio_keeps_whole_traces_or_none(capsys: pytest.CaptureFixture[str]) -> None:
    provider = tracing_from_settings("console", sample_ratio=0.5)
    sink = TracingSink(provider)
    for _ in range(200):
        sink.submit(SAMPLES["fallback"]())
    provider.shutdown()
    out = capsys.readouterr().out
    parents, children = (
        out.count('"kind": "SpanKind.SERVER"'),
        out.count('"kind": "SpanKind.CLIENT"'),
    )
    assert 40 < parents < 160
    assert children == 2 * parents
