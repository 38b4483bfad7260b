"""The dashboard's pages as HTML: Jinja2 templates shipped in ``modelroute/dashboard/templates``.

Autoescaping is on for every template (prompts, route and model names come from the records and
from callers); an undefined name is an error, not an empty string. Filters format the numbers
the same way everywhere: dollars as the CLI prints them, rates as percentages, latencies in ms,
times in UTC.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import orjson
from markupsafe import Markup

from modelroute.pricing import usd

PACKAGE = Path(__file__).resolve().parent.parent / "dashboard"
TEMPLATES = PACKAGE / "templates"
STATIC = PACKAGE / "static"


def _number(value: object) -> float | None:
    """A finite number, or None (None, NaN, and anything that is not a number: a figure an
    analysis left out shows as a dash rather than failing the page)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def money(value: float | None) -> str:
    number = _number(value)
    return "–" if number is None else usd(number)


def percent(value: float | None, digits: int = 1) -> str:
    number = _number(value)
    return "–" if number is None else f"{number * 100:.{digits}f}%"


def millis(value: float | None) -> str:
    number = _number(value)
    if number is None:
        return "–"
    return f"{number:,.0f} ms" if number >= 10 else f"{number:.1f} ms"


def count(value: int | float | None) -> str:
    number = _number(value)
    return "–" if number is None else f"{number:,.0f}"


def decimal(value: float | None, digits: int = 2) -> str:
    number = _number(value)
    return "–" if number is None else f"{number:.{digits}f}"


def utc(value: float | None, precise: bool = False) -> str:
    """A Unix time as ``2026-12-06 09:15:00 UTC`` (with milliseconds when ``precise``)."""
    if value is None:
        return "–"
    moment = datetime.fromtimestamp(value, UTC)
    if precise:
        return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} UTC"
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def json_data(value: Any) -> str:
    """Data for a page's script, inside ``<script type="application/json">``: ``<`` is
    escaped so no value can close the element."""
    text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    return text.decode().replace("<", "\\u003c")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        money=money,
        percent=percent,
        millis=millis,
        count=count,
        decimal=decimal,
        utc=utc,
    )
    env.filters["json_data"] = lambda value: Markup(json_data(value))
    return env


class Renderer:
    """One Jinja2 environment for the app's lifetime (templates compiled once)."""

    def __init__(self, prefix: str) -> None:
        self.env = environment()
        self.prefix = prefix

    def page(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(prefix=self.prefix, **context)
