"""Logging for the gateway: one configuration for the ``modelroute.*`` and uvicorn loggers.

Every line carries a UTC timestamp, the level and the logger's name, as text or as one JSON
object per line. Secrets never reach the output: the formatters replace the policy's resolved
API keys, bearer tokens, ``sk-``-style keys and URL passwords (a store URL in an error
message) with ``[redacted]``, in the message and in any traceback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

LogFormat = Literal["text", "json"]
REDACTED = "[redacted]"

# Shapes of credentials that may appear in a message even when we do not know the value:
# bearer tokens, OpenAI/Anthropic-style keys, key=value pairs and the password in a URL.
_PATTERNS = (
    (re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"), REDACTED),
    (
        re.compile(
            r"(?i)((?:x-api-key|api[_-]?key|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]+"
        ),
        rf"\g<1>{REDACTED}",
    ),
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), rf"\g<1>{REDACTED}@"),
)


class Redactor:
    """Replaces known secret values and credential shapes in a piece of text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a key that contains another is replaced whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``2026-12-06T09:15:00.123Z WARNING modelroute.records: message``"""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self._redact = Redactor(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(f"{_timestamp(record)} {super().format(record)}")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``ts``, ``level``, ``logger``, ``message`` and, when an
    exception is attached, ``exc_info`` (the formatted traceback)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._redact = Redactor(secrets)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": self._redact(record.getMessage()),
        }
        if record.exc_info:
            line["exc_info"] = self._redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exc_info"] = self._redact(record.exc_text)
        return orjson.dumps(line).decode()


def log_config(level: str, fmt: LogFormat, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the gateway's process (uvicorn applies it in each
    worker): the ``modelroute`` and uvicorn loggers at ``level``, one stderr handler."""
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    logger = {"handlers": ["stderr"], "level": level.upper(), "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "line": {"()": f"{__name__}.{formatter.__name__}", "secrets": list(secrets)}
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "line",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "modelroute": logger,
            "uvicorn": logger,
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": logger,
        },
    }
