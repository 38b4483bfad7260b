"""OpenTelemetry traces built from the records stream, after the fact.

``TracingSink`` is a ``RecordSink``: for each finished record it emits one span for the request
(kind SERVER, named ``chat {route}``) and one child span per upstream attempt (kind CLIENT,
named ``chat {model id}``, as the GenAI semantic conventions name inference spans). Start and
end times come from the record (``started_at``; each attempt's ``started_ms`` offset and
``latency_ms``), so no tracing code runs while the request is served, and a span's duration is
the one the record states.

Attributes follow the GenAI semantic conventions where one fits (``gen_ai.operation.name``,
``gen_ai.provider.name`` and the deprecated ``gen_ai.system`` for older back ends,
``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.usage.*``,
``gen_ai.response.time_to_first_chunk``, ``gen_ai.response.finish_reasons``, ``error.type``)
and are ``modelroute.*`` otherwise (route, request id, policy hash, cost, attempt outcome).
Prompts and answers are never put on spans.

Off by default: the serve command builds a provider with ``tracing_from_settings`` only when
asked. The SDK and the OTLP exporter are imported there, so this module needs only the API.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.util.types import AttributeValue

from modelroute.records.record import Attempt, AttemptResult, RequestRecord, RequestStatus
from modelroute.types import Usage

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

OTLP_ENDPOINT = "http://127.0.0.1:4318/v1/traces"
OPERATION = "chat"  # chat.completions and messages are both chat operations
ERROR_STATUSES = frozenset(
    {RequestStatus.FAILED, RequestStatus.STREAM_ERROR}
)  # the gateway's fault, not the client's
DESCRIPTION_LIMIT = 500

Attributes = dict[str, AttributeValue]


def _ns(unix_s: float) -> int:
    return round(unix_s * 1e9)


def _ms_ns(ms: float) -> int:
    return round(ms * 1e6)


def _usage(attrs: Attributes, usage: Usage | None) -> None:
    if usage is None:
        return
    attrs["gen_ai.usage.input_tokens"] = usage.input_tokens
    attrs["gen_ai.usage.output_tokens"] = usage.output_tokens
    if usage.cached_input_tokens:
        attrs["gen_ai.usage.cache_read.input_tokens"] = usage.cached_input_tokens
    if usage.cache_write_tokens:
        attrs["gen_ai.usage.cache_write.input_tokens"] = usage.cache_write_tokens
    if usage.reasoning_tokens:
        attrs["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning_tokens


def _put(attrs: Attributes, name: str, value: AttributeValue | None) -> None:
    if value is not None:
        attrs[name] = value


def _finish_reason(item: RequestRecord | Attempt) -> str | None:
    # Records do not carry a finish reason yet; read it once they do.
    reason: Any = getattr(item, "finish_reason", None)
    return reason if isinstance(reason, str) else None


def request_attributes(record: RequestRecord) -> Attributes:
    """The request span's attributes."""
    attrs: Attributes = {
        "gen_ai.operation.name": OPERATION,
        "gen_ai.request.stream": record.streamed,
        "modelroute.request_id": record.request_id,
        "modelroute.policy_hash": record.policy_hash,
        "modelroute.status": record.status,
        "modelroute.endpoint": record.endpoint,
        "modelroute.cost_usd": record.cost_usd,
        "modelroute.price_unknown": record.price_unknown,
        "modelroute.escalations": record.escalations,
        "modelroute.attempts": record.attempt_count,
        "http.response.status_code": record.http_status,
    }
    final = next((a for a in reversed(record.attempts) if a.model == record.final_model), None)
    if final is not None:
        attrs["gen_ai.provider.name"] = attrs["gen_ai.system"] = final.provider
    _put(attrs, "gen_ai.response.model", record.final_reported_model or record.final_model)
    _put(attrs, "modelroute.route", record.route)
    _put(attrs, "modelroute.final_model", record.final_model)
    _put(attrs, "modelroute.task", record.task)
    _put(attrs, "modelroute.selected_by", record.selected_by)
    _put(attrs, "modelroute.policy_version", record.policy_version)
    _put(attrs, "modelroute.confidence", record.confidence)
    if record.streamed and record.ttft_ms is not None:
        attrs["gen_ai.response.time_to_first_chunk"] = record.ttft_ms / 1000
    reason = _finish_reason(record)
    if reason is not None:
        attrs["gen_ai.response.finish_reasons"] = (reason,)
    if record.status != RequestStatus.OK:
        attrs["error.type"] = record.failure or record.status
    _usage(attrs, record.usage)
    return attrs


def attempt_attributes(record: RequestRecord, attempt: Attempt, index: int) -> Attributes:
    """An attempt span's attributes."""
    attrs: Attributes = {
        "gen_ai.operation.name": OPERATION,
        "gen_ai.provider.name": attempt.provider,
        "gen_ai.system": attempt.provider,
        "gen_ai.request.model": attempt.model_id,
        "modelroute.route": record.route or "",
        "modelroute.request_id": record.request_id,
        "modelroute.model": attempt.model,
        "modelroute.attempt.index": index,
        "modelroute.attempt.tier": attempt.tier,
        "modelroute.attempt.outcome": attempt.outcome,
    }
    _put(attrs, "gen_ai.response.model", attempt.reported_model)
    _put(attrs, "modelroute.cost_usd", attempt.cost_usd)
    _put(attrs, "modelroute.confidence", attempt.confidence)
    _put(attrs, "modelroute.fingerprint", attempt.fingerprint)
    _put(attrs, "http.response.status_code", attempt.status)
    _put(attrs, "modelroute.attempt.retry_after_s", attempt.retry_after_s)
    if not attempt.price_known:
        attrs["modelroute.price_unknown"] = True
    if attempt.ttft_ms is not None:
        attrs["gen_ai.response.time_to_first_chunk"] = attempt.ttft_ms / 1000
    reason = _finish_reason(attempt)
    if reason is not None:
        attrs["gen_ai.response.finish_reasons"] = (reason,)
    if attempt.outcome == AttemptResult.FAILED:
        attrs["error.type"] = attempt.failure or "_OTHER"
    elif attempt.message is not None:
        attrs["modelroute.attempt.message"] = attempt.message  # why skipped, "verifier", ...
    _usage(attrs, attempt.usage)
    return attrs


def _error(text: str | None) -> Status:
    return Status(StatusCode.ERROR, (text or "")[:DESCRIPTION_LIMIT] or None)


class TracingSink:
    """A ``RecordSink`` that turns each record into a span tree through ``provider``."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("modelroute")

    def submit(self, record: RequestRecord) -> None:
        start = _ns(record.started_at)
        route = record.route
        parent = self._tracer.start_span(
            f"{OPERATION} {route}" if route else OPERATION,
            kind=SpanKind.SERVER,
            attributes=request_attributes(record),
            start_time=start,
        )
        if parent.is_recording():
            context = trace.set_span_in_context(parent)
            for index, attempt in enumerate(record.attempts):
                self._attempt(record, attempt, index, start, context)
            if record.status in ERROR_STATUSES:
                parent.set_status(_error(record.error))
        parent.end(end_time=start + _ms_ns(record.latency_ms))

    def _attempt(
        self,
        record: RequestRecord,
        attempt: Attempt,
        index: int,
        request_start: int,
        context: Context,
    ) -> None:
        start = request_start + _ms_ns(attempt.started_ms)
        span = self._tracer.start_span(
            f"{OPERATION} {attempt.model_id}",
            context=context,
            kind=SpanKind.CLIENT,
            attributes=attempt_attributes(record, attempt, index),
            start_time=start,
        )
        if attempt.outcome == AttemptResult.FAILED:
            span.set_status(_error(attempt.message))
        span.end(end_time=start + _ms_ns(attempt.latency_ms))

    async def close(self) -> None:
        """Flush spans still batched (the router awaits this at shutdown)."""
        flush: Callable[[], object] | None = getattr(self.provider, "force_flush", None)
        if flush is not None:
            await asyncio.to_thread(flush)


def tracing_from_settings(
    exporter: str,
    *,
    endpoint: str | None = None,
    service_name: str = "modelroute",
    sample_ratio: float = 1.0,
) -> SdkTracerProvider:
    """A provider exporting through a batch processor: ``console`` (stdout) or ``otlp``
    (OTLP over HTTP/protobuf, to ``endpoint``, by default a collector on 127.0.0.1:4318).

    ``sample_ratio`` keeps that share of requests' traces (decided per trace id); a request
    not sampled costs a few microseconds instead of some 35 per span. Call ``shutdown()`` on
    the provider at exit to export what is still batched (``TracingSink.close`` flushes)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    if not 0.0 <= sample_ratio <= 1.0:
        raise ValueError(f"sample_ratio must be within [0, 1], not {sample_ratio}")

    span_exporter: SpanExporter
    if exporter == "console":
        # sys.stdout as it is now (the exporter's default is bound at its import)
        span_exporter = ConsoleSpanExporter(service_name=service_name, out=sys.stdout)
    elif exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise RuntimeError(
                "the otlp exporter needs opentelemetry-exporter-otlp-proto-http installed"
            ) from exc
        span_exporter = OTLPSpanExporter(endpoint=endpoint or OTLP_ENDPOINT)
    else:
        raise ValueError(f"unknown trace exporter {exporter!r}: expected 'console' or 'otlp'")
    provider = SdkTracerProvider(
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
        resource=Resource.create({"service.name": service_name}),
    )
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    return provider
