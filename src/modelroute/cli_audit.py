"""``modelroute audit``: which tasks take the volume, which models serve them and why, and how
much goes to more capable models than required."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import click
import orjson
import yaml

from modelroute.cli_records import EXIT_BAD_INPUT, parse_since, store_option, with_store
from modelroute.errors import PolicyError
from modelroute.policy import Policy, load_policy
from modelroute.records.stores import Store

IMPORT_FORMATS = ("openai-jsonl", "litellm", "csv")


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(EXIT_BAD_INPUT)


def _policy(path: str | None) -> tuple[Policy | None, dict[str, Any] | None]:
    if path is None:
        return None, None
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        for problem in exc.problems:
            click.echo(problem.render(), err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
    return policy, yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def _mapping(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    out = {}
    for item in text.split(","):
        column, sep, field = item.partition("=")
        if not sep or not column.strip() or not field.strip():
            _fail(f"--map expects column=field pairs separated by commas, got {item!r}")
        out[column.strip()] = field.strip()
    return out


def _emit(report: Any, as_json: bool, html_path: str | None) -> None:
    from modelroute.analysis.audit_html import render_html
    from modelroute.analysis.audit_text import render_audit

    if html_path:
        try:
            Path(html_path).write_text(render_html(report), encoding="utf-8")
        except OSError as exc:
            _fail(f"--html: cannot write {html_path}: {exc}")
    if as_json:
        click.echo(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render_audit(report))
        if html_path:
            click.echo(f"\nHTML report: {html_path}")


@click.command()
@store_option
@click.option("--since", default="30d", show_default=True, help="15m, 2h, 30d, a date or unix s")
@click.option(
    "--top", default=20, show_default=True, type=click.IntRange(1, 1000), help="Tasks to show."
)
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(),
    help="The policy in force: thresholds, prices, and the change that captures the savings.",
)
@click.option(
    "--min-quality",
    type=click.FloatRange(0, 1),
    help="The threshold for tasks whose route sets no min_quality.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    help="Also write a self-contained HTML report with charts.",
)
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.option(
    "--import",
    "import_path",
    type=click.Path(),
    help="Audit a request log instead of a store (nothing is routed).",
)
@click.option(
    "--format", "import_format", type=click.Choice(IMPORT_FORMATS), help="The --import format."
)
@click.option(
    "--map",
    "mapping",
    help="col=field,...: the column (or JSON key path) holding each field of an imported log.",
)
@click.option("--candidates", help="Imports: more models to price the tasks at (comma-separated).")
def audit(
    store_url: str,
    since: str,
    top: int,
    policy_path: str | None,
    min_quality: float | None,
    html_path: str | None,
    as_json: bool,
    import_path: str | None,
    import_format: str | None,
    mapping: str | None,
    candidates: str | None,
) -> None:
    """Audit the top tasks by volume: who serves them and why, their measured quality, the
    cheapest model that meets their threshold, and what moving them would save.

    A task is the request's task label, or else a fingerprint of its prompt's template.
    With --import, a request log (OpenAI-style JSONL, LiteLLM's logging payloads, or CSV)
    is audited in a temporary store instead.
    """
    from modelroute.analysis.audit import AuditOptions

    policy, data = _policy(policy_path)
    extra = tuple(m.strip() for m in (candidates or "").split(",") if m.strip())
    options = AuditOptions(
        since=0.0, now=time.time(), top=top, policy=policy, policy_data=data,
        policy_path=policy_path, store_url=store_url, min_quality=min_quality, candidates=extra,
    )  # fmt: skip
    if import_path is not None:
        report = _audit_import(import_path, import_format, _mapping(mapping), options)
    else:
        if import_format or mapping:
            _fail("--format and --map go with --import FILE")
        since_ts = parse_since(since) or 0.0
        options = AuditOptions(**{**_fields(options), "since": since_ts})
        report = with_store(store_url, lambda s: _run(s, options, store_url))
    if not report.totals.requests:
        _fail("no records to audit (none in the store, or none match --since)")
    _emit(report, as_json, html_path)


def _fields(options: Any) -> dict[str, Any]:
    return {name: getattr(options, name) for name in options.__dataclass_fields__}


async def _run(store: Store, options: Any, source: str) -> Any:
    from modelroute.analysis.audit import audit as run_audit

    return await run_audit(store, options, source)


def _audit_import(path: str, fmt: str | None, mapping: dict[str, str], options: Any) -> Any:
    from modelroute.analysis.audit import AuditOptions
    from modelroute.analysis.audit_import import LogFormatError, published_prices, read_log
    from modelroute.records.stores.sqlite import SqliteStore

    if fmt is None:
        _fail(f"--import needs --format ({', '.join(IMPORT_FORMATS)})")
    if not Path(path).is_file():
        _fail(f"--import: no such file: {path}")
    try:
        records = read_log(Path(path), str(fmt), mapping)
    except LogFormatError as exc:
        _fail(f"--import {path}: {exc}")
    if not records:
        _fail(f"--import {path}: no requests in the file")
    seen = tuple(sorted({str(r.final_model) for r in records if r.final_model}))
    last = max(r.started_at for r in records)
    options = AuditOptions(**{
        **_fields(options), "since": 0.0, "now": last + 1.0, "prices": published_prices,
        "candidates": (*seen, *options.candidates), "store_url": "AUDIT_STORE",
    })  # fmt: skip

    async def run() -> Any:
        with tempfile.TemporaryDirectory(prefix="modelroute-audit-") as tmp:
            store = SqliteStore(Path(tmp) / "imported.db")
            await store.open()
            try:
                await store.write(records)
                return await _run(store, options, path)
            finally:
                await store.close()

    return asyncio.run(run())
