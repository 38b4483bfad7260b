"""Request logs from elsewhere as records, so ``modelroute audit --import`` can audit traffic that
never went through modelroute. Nothing is routed: each logged request becomes a record with
the model that answered, its usage, cost, time, task label and prompt text (when logged), and
no routing decision.

Formats (the README's "Auditing your traffic" section describes them for users):

- ``openai-jsonl``: one JSON object a line with ``request`` (a chat completions request body,
  or an OpenAI Batch input line whose ``body`` is one) and ``response`` (a chat completion, or
  a Batch output line's ``response`` whose ``body`` is one). The time is ``timestamp`` (unix
  seconds or ISO 8601) or else the completion's ``created``; the task label is
  ``request.metadata.task`` or ``metadata.task``.
- ``litellm``: LiteLLM's ``StandardLoggingPayload`` (what its custom loggers receive as
  ``standard_logging_object``) or a row of its spend logs, as JSON lines (or one JSON array):
  ``model``, ``prompt_tokens``, ``completion_tokens``, ``startTime``, ``response_cost`` (or
  ``spend``), ``status``, ``messages``, ``model_group``; the task label is ``task`` in
  ``metadata.spend_logs_metadata`` or ``metadata.requester_metadata``, or a request tag
  ``task:NAME``.
- ``csv``: a header row naming the fields below (or mapped to them with ``--map``).

Fields: ``timestamp``, ``model``, ``input_tokens``, ``output_tokens``,
``cached_input_tokens``, ``cost_usd``, ``prompt`` (the user's text), ``system``, ``task``,
``route``, ``status``, ``request_id``. ``--map col=field,...`` names where a field is: a CSV
column, or a dotted key path in a JSON line (``metadata.tenant=task``). A cost the log does not
give is priced from the bundled genai-prices data.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from modelroute.policy.prices import lookup_model_prices
from modelroute.pricing import PriceTable, cost_of, merge_prices
from modelroute.records.record import RequestRecord, RequestStatus
from modelroute.types import Usage

FIELDS = (
    "timestamp", "model", "input_tokens", "output_tokens", "cached_input_tokens", "cost_usd",
    "prompt", "system", "task", "route", "status", "request_id",
)  # fmt: skip
_OK = {"", "ok", "success", "succeeded", "200", "true"}


class LogFormatError(ValueError):
    """The file is not in the format it was said to be (with the line it stopped at)."""


def published_prices(model: str) -> PriceTable | None:
    """The bundled genai-prices data's prices for a model id."""
    found = lookup_model_prices(model)
    return None if found is None else merge_prices({}, found)


def _path(obj: Any, path: str) -> Any:
    for key in path.split("."):
        if isinstance(obj, Mapping):
            obj = obj.get(key)
        elif isinstance(obj, list) and key.isdigit() and int(key) < len(obj):
            obj = obj[int(key)]
        else:
            return None
    return obj


def _prompt(messages: Any) -> str | None:
    """A message list (or text) in the shape records keep prompts in: ``role: content``."""
    if isinstance(messages, str):
        return f"user: {messages}"
    if not isinstance(messages, list):
        return None
    lines = []
    for m in messages:
        if isinstance(m, Mapping) and isinstance(m.get("content"), str):
            lines.append(f"{m.get('role')}: {m['content']}")
    return "\n".join(lines) or None


def _time(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value) / (1000.0 if value > 1e11 else 1.0)  # milliseconds, if they are
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise LogFormatError(f"unreadable time {value!r}") from None


def _openai(line: Mapping[str, Any]) -> dict[str, Any]:
    request = line.get("request") or {}
    request = request.get("body", request) if isinstance(request, Mapping) else {}
    response = line.get("response") or {}
    status = response.get("status_code") if isinstance(response, Mapping) else None
    body = response.get("body", response) if isinstance(response, Mapping) else {}
    usage = body.get("usage") or {}
    failed = line.get("error") is not None or (status is not None and int(status) >= 400)
    return {
        "timestamp": line.get("timestamp") or line.get("created_at") or body.get("created"),
        "model": body.get("model") or request.get("model"),
        "input_tokens": usage.get("prompt_tokens"),
        "output_tokens": usage.get("completion_tokens"),
        "cached_input_tokens": _path(usage, "prompt_tokens_details.cached_tokens"),
        "messages": request.get("messages"),
        "task": _path(request, "metadata.task") or _path(line, "metadata.task"),
        "route": request.get("model"),
        "status": "failed" if failed else "ok",
        "request_id": line.get("custom_id") or line.get("id") or body.get("id"),
    }


def _litellm(line: Mapping[str, Any]) -> dict[str, Any]:
    tags = line.get("request_tags") or []
    tagged = next((t[5:] for t in tags if isinstance(t, str) and t.startswith("task:")), None)
    task = (
        _path(line, "metadata.spend_logs_metadata.task")
        or _path(line, "metadata.requester_metadata.task")
        or tagged
    )
    return {
        "timestamp": line.get("startTime"),
        "model": line.get("model"),
        "input_tokens": line.get("prompt_tokens"),
        "output_tokens": line.get("completion_tokens"),
        "cost_usd": line.get("response_cost", line.get("spend")),
        "messages": line.get("messages"),
        "task": task,
        "route": line.get("model_group"),
        "status": line.get("status") or "success",
        "request_id": line.get("id") or line.get("request_id"),
    }


def _json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    text = path.read_bytes()
    if text.lstrip()[:1] == b"[":  # one JSON array
        try:
            yield from enumerate(orjson.loads(text), 1)
        except orjson.JSONDecodeError as exc:
            raise LogFormatError(f"not a JSON array: {exc}") from None
        return
    for n, raw in enumerate(text.splitlines(), 1):
        if raw.strip():
            try:
                yield n, orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise LogFormatError(f"line {n} is not JSON: {exc}") from None


def _rows(path: Path, fmt: str, mapping: Mapping[str, str]) -> Iterator[tuple[int, dict[str, Any]]]:
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            for n, row in enumerate(reader, 2):
                fields = {mapping.get(k, k): v for k, v in row.items() if k is not None}
                yield n, fields
        return
    parse = _openai if fmt == "openai-jsonl" else _litellm
    for n, line in _json_lines(path):
        if not isinstance(line, Mapping):
            raise LogFormatError(f"line {n} is not a JSON object")
        fields = parse(line)
        for column, name in mapping.items():
            fields[name] = _path(line, column)
        yield n, fields


def _int(value: Any, name: str, n: int) -> int:
    if value is None or value == "":
        return 0
    try:
        return int(float(value))
    except (TypeError, ValueError):
        raise LogFormatError(f"line {n}: {name} is not a number: {value!r}") from None


def _record(n: int, f: Mapping[str, Any], seen: set[str]) -> RequestRecord:
    at = _time(f.get("timestamp"))
    if at is None:
        raise LogFormatError(f"line {n}: no timestamp")
    model = f.get("model") or None
    prompt = _prompt(f.get("messages")) if f.get("messages") is not None else None
    if prompt is None and (f.get("prompt") or f.get("system")):
        system = f"system: {f['system']}\n" if f.get("system") else ""
        prompt = system + (f"user: {f['prompt']}" if f.get("prompt") else "").rstrip("\n")
    usage = Usage(
        input_tokens=_int(f.get("input_tokens"), "input_tokens", n),
        output_tokens=_int(f.get("output_tokens"), "output_tokens", n),
        cached_input_tokens=_int(f.get("cached_input_tokens"), "cached_input_tokens", n),
    )
    ok = str(f.get("status") or "").strip().lower() in _OK
    rid = str(f.get("request_id") or f"line-{n}")
    if rid in seen:
        rid = f"{rid}#{n}"
    seen.add(rid)
    record = RequestRecord(
        request_id=rid, started_at=at, route=f.get("route") or None, task=f.get("task") or None,
        endpoint="import", final_model=model if ok else None, usage=usage if ok else None,
        status=RequestStatus.OK if ok else RequestStatus.FAILED, prompt=prompt,
        http_status=200 if ok else 502,
    )  # fmt: skip
    _price(record, f.get("cost_usd"), str(model or ""), n)
    return record


def _price(record: RequestRecord, logged: Any, model: str, n: int) -> None:
    if logged not in (None, ""):
        try:
            record.cost_usd = float(logged)
        except (TypeError, ValueError):
            raise LogFormatError(f"line {n}: cost_usd is not a number: {logged!r}") from None
        return
    prices = published_prices(model) if model else None
    if record.usage is None:
        return
    if prices is None:
        record.price_unknown = True
        return
    cost = cost_of(record.usage, prices)
    record.cost_usd, record.price_unknown = cost.usd, not cost.known


def read_log(path: Path, fmt: str, mapping: Mapping[str, str]) -> list[RequestRecord]:
    unknown = sorted(set(mapping.values()) - set(FIELDS) - {"messages"})
    if unknown:
        raise LogFormatError(f"--map names unknown field(s) {unknown}; fields: {', '.join(FIELDS)}")
    seen: set[str] = set()
    try:
        return [_record(n, fields, seen) for n, fields in _rows(path, fmt, mapping)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LogFormatError(str(exc)) from None
