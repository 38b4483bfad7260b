"""``modelroute logs | show | stats | export``: reading the request records."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from modelroute.pricing import usd
from modelroute.records.stores import DEFAULT_URL, Store, open_store

T = TypeVar("T")
EXIT_BAD_INPUT = 2

store_option = click.option(
    "--store",
    "store_url",
    default=DEFAULT_URL,
    show_default=True,
    help="Where the records are: a SQLite path (sqlite:///path) or a postgresql:// URL.",
)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(EXIT_BAD_INPUT)


def parse_since(text: str | None, now: float | None = None) -> float | None:
    """'15m', '2h', '7d', an ISO date/time, or unix seconds."""
    if text is None:
        return None
    now = time.time() if now is None else now
    relative = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd])", text.strip())
    if relative:
        scale = {"s": 1, "m": 60, "h": 3600, "d": 86400}[relative.group(2)]
        return now - float(relative.group(1)) * scale
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        _fail(f"--since: {text!r} is not a duration (15m, 2h, 7d), a date or unix seconds")
    return None


def with_store(url: str, action: Callable[[Store], Awaitable[T]]) -> T:
    if "://" not in url or url.startswith("sqlite://"):
        path = url.split("://", 1)[-1].removeprefix("/") if "://" in url else url
        if not Path(path).exists():
            _fail(f"no records at {path} (start `modelroute serve` there, or pass --store)")

    async def run() -> T:
        store = open_store(url)
        try:
            await store.open()
        except Exception as exc:  # unreachable database, bad URL: a message, not a traceback
            _fail(f"cannot open the record store {url}: {exc}")
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except ValueError as exc:
        _fail(str(exc))
        raise


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):.0f}"


@click.command()
@store_option
@click.option("--route")
@click.option("--model")
@click.option("--since", help="15m, 2h, 7d, a date, or unix seconds")
@click.option("--failed", is_flag=True, help="Only requests that did not succeed.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def logs(
    store_url: str,
    route: str | None,
    model: str | None,
    since: str | None,
    failed: bool,
    limit: int,
    as_json: bool,
) -> None:
    """Recent requests, newest first."""
    since_ts = parse_since(since)
    rows = with_store(store_url, lambda s: s.query(route, model, since_ts, failed, limit))
    if as_json:
        for row in rows:
            click.echo(orjson.dumps(row, default=str).decode())
        return
    table = [
        [
            _time(r["started_at"]),
            r["request_id"],
            r.get("route") or "-",
            r.get("final_model") or "-",
            r["status"],
            str(r.get("attempt_count", "-")),
            _ms(r.get("latency_ms")),
            usd(float(r.get("cost_usd") or 0)),
            r.get("failure") or "",
        ]
        for r in rows
    ]
    click.echo(
        _table(
            ["time", "request_id", "route", "model", "status", "attempts", "ms", "cost", "failure"],
            table,
        )
    )


def _render_record(r: dict[str, Any]) -> str:
    lines = [
        f"request {r['request_id']}  {_time(r['started_at'])}  {r['endpoint']}"
        f"{' (streamed)' if r.get('streamed') else ''}",
        f"status: {r['status']} (HTTP {r.get('http_status')})"
        + (f", failure {r['failure']}: {r.get('error')}" if r.get("failure") else ""),
        f"route: {r.get('route')} (selected by {r.get('selected_by')}), task "
        f"{r.get('task')}, policy {str(r.get('policy_hash'))[:12]} "
        f"{r.get('policy_version') or ''}",
        f"answered by: {r.get('final_model')} (provider reported "
        f"{r.get('final_reported_model')}, fingerprint {r.get('final_fingerprint')})",
        f"latency {_ms(r.get('latency_ms'))} ms, ttft {_ms(r.get('ttft_ms'))} ms, cost "
        f"{usd(float(r.get('cost_usd') or 0))}"
        + (" (some usage unpriced)" if r.get("price_unknown") else "")
        + f", escalations {r.get('escalations', 0)}",
    ]
    decision = r.get("decision") or {}
    if decision:
        lines.append(
            f"decision: {decision.get('strategy')}/{decision.get('objective')}, "
            f"order {' -> '.join(decision.get('order') or []) or 'none'}"
            + (f", relaxed {decision['relaxed']}" if decision.get("relaxed") else "")
        )
        for tier in decision.get("tiers") or []:
            for c in tier:
                lines.append(
                    f"  candidate {c['model']}: est {usd(c['cost_usd'])}, p95 "
                    f"{c['latency_p95_ms']:.0f} ms ({c['latency_source']}), quality "
                    f"{c['quality']} ({c['quality_source']})"
                )
        for rej in decision.get("rejections") or []:
            lines.append(f"  rejected {rej['model']}: {rej['message']}")
        for note in decision.get("notes") or []:
            lines.append(f"  note: {note}")
    lines += _planner_lines(r.get("planner_input"))
    lines.append("attempts:")
    for i, a in enumerate(r.get("attempts") or [], start=1):
        usage = a.get("usage") or {}
        lines.append(
            f"  {i}. {a['model']} tier {a['tier']} at +{a['started_ms']:.0f} ms: "
            f"{a['outcome']}"
            + (f" ({a['failure']}: {a.get('message')})" if a.get("failure") else "")
            + f", {a['latency_ms']:.0f} ms, tokens {usage.get('input_tokens', 0)}/"
            f"{usage.get('output_tokens', 0)}, {usd(float(a.get('cost_usd') or 0))}"
            + (f", confidence {a['confidence']:.3f}" if a.get("confidence") is not None else "")
        )
    for fb in r.get("feedback") or []:
        lines.append(
            f"feedback: score {fb.get('score')} label {fb.get('label')} from "
            f"{fb.get('source')}: {fb.get('comment') or ''}"
        )
    return "\n".join(lines)


_NEEDS = {
    "has_tools": "tools",
    "has_images": "vision",
    "needs_json": "json_mode",
    "needs_logprobs": "logprobs",
    "needs_responses": "responses",
}


def _planner_lines(pi: dict[str, Any] | None) -> list[str]:
    """The planner's input, as ``modelroute replay`` plans on it again."""
    if pi is None:
        return []
    needs = [cap for flag, cap in _NEEDS.items() if pi.get(flag)] or ["nothing special"]
    limits = [f"{k}={v}" for k, v in (pi.get("limits") or {}).items() if v is not None]
    lines = [
        f"planner input: requested {pi.get('requested')!r}, prompt ~{pi.get('prompt_tokens')} "
        f"tokens, max_tokens {pi.get('max_output_tokens')}, needs {', '.join(needs)}"
        + (f", limits {', '.join(limits)}" if limits else "")
    ]
    stats = pi.get("stats") or {}
    scopes = [(f"route {route}", per) for route, per in (stats.get("routes") or {}).items()]
    scopes.append(("all routes", stats.get("models") or {}))
    for scope, per_model in scopes:
        for model, figures in per_model.items():
            shown = ", ".join(f"{k} {v:g}" for k, v in figures.items())
            lines.append(f"  measured {model} ({scope}): {shown}")
    if stats.get("open_circuits"):
        lines.append(f"  open circuits: {', '.join(stats['open_circuits'])}")
    return lines


@click.command()
@click.argument("request_id")
@store_option
@click.option("--json", "as_json", is_flag=True)
def show(request_id: str, store_url: str, as_json: bool) -> None:
    """One request's whole record: decision, rejections, attempts, feedback."""
    record = with_store(store_url, lambda s: s.get(request_id))
    if record is None:
        _fail(f"no request {request_id!r} in {store_url}")
        return
    click.echo(
        orjson.dumps(record, default=str, option=orjson.OPT_INDENT_2).decode()
        if as_json
        else _render_record(record)
    )


@click.command()
@store_option
@click.option("--since", help="15m, 2h, 7d, a date, or unix seconds")
@click.option("--json", "as_json", is_flag=True)
def stats(store_url: str, since: str | None, as_json: bool) -> None:
    """Per route and model: volume, spend, p50/p95 latency, error rate, quality."""
    since_ts = parse_since(since)
    rows = with_store(store_url, lambda s: s.stats(since_ts))
    if as_json:
        click.echo(orjson.dumps(rows, default=str, option=orjson.OPT_INDENT_2).decode())
        return
    table = [
        [
            r["route"] or "-",
            r["model"] or "-",
            str(r["requests"]),
            usd(r["spend_usd"]),
            _ms(r["p50_latency_ms"]),
            _ms(r["p95_latency_ms"]),
            f"{r['error_rate'] * 100:.1f}%",
            "-" if r["quality"] is None else f"{r['quality']:.3f} (n={r['feedback']})",
        ]
        for r in rows
    ]
    click.echo(
        _table(
            ["route", "model", "requests", "spend", "p50 ms", "p95 ms", "errors", "quality"], table
        )
    )


@click.command()
@store_option
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "parquet"]), default="jsonl", show_default=True
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True)
def export(store_url: str, fmt: str, output: str) -> None:
    """Every record, as JSON lines or Parquet (for analysis elsewhere)."""
    count = with_store(store_url, lambda s: s.export(output, fmt))  # type: ignore[arg-type]
    click.echo(f"exported {count} records to {output}", err=True)
