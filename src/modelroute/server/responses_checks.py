"""What the Responses API refuses in the parameters a ``response`` object repeats. Pure.

A response echoes ``temperature``, ``top_p``, ``service_tier``, ``text``, ``reasoning``,
``metadata``, ``tools`` and the rest as the client sent them: a value the API itself refuses
(``text.verbosity: ""``, a ``service_tier`` it does not know, metadata that is not strings)
would come back as a response no client can read. Each is refused first, as the API refuses
it: a 400 naming the parameter (``BridgeError``), whatever model would have served it.
"""

from __future__ import annotations

from typing import Any

from modelroute.request_fields import MAX_COUNT


class BridgeError(ValueError):
    """A Responses request refused before routing: malformed (400, ``param`` naming the
    field, as OpenAI's errors do), or naming what cannot be read now (``status`` 503)."""

    def __init__(
        self,
        message: str,
        param: str | None = None,
        code: str = "invalid_request",
        status: int = 400,
    ) -> None:
        super().__init__(message)
        self.param = param
        self.code = code
        self.status = status


_STRINGS = ("user", "safety_identifier", "prompt_cache_key", "previous_response_id")
_BOOLEANS = ("parallel_tool_calls", "store", "background")
_CHOICES: dict[str, tuple[str, ...]] = {
    "service_tier": ("auto", "default", "flex", "scale", "priority"),
    "truncation": ("auto", "disabled"),
}
_VERBOSITY = ("low", "medium", "high")
_EFFORT = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_SUMMARY = ("auto", "concise", "detailed")
_RANGES = {"temperature": 2.0, "top_p": 1.0}
_METADATA_KEYS, _METADATA_KEY_CHARS, _METADATA_VALUE_CHARS = 16, 64, 512


def check_echoed(body: dict[str, Any]) -> None:
    """Refuse (``BridgeError``) a value of a repeated parameter that the API refuses."""
    for key in _STRINGS:
        _typed(body, key, str, "a string")
    for key in _BOOLEANS:
        _typed(body, key, bool, "a boolean")
    for key, choices in _CHOICES.items():
        _choice(body.get(key), choices, key)
    for key, maximum in _RANGES.items():
        _decimal(body.get(key), maximum, key)
    _count(body.get("top_logprobs"), 0, 20, "top_logprobs")
    _count(body.get("max_tool_calls"), 1, MAX_COUNT, "max_tool_calls")
    _metadata(body.get("metadata"))
    text = body.get("text")
    if isinstance(text, dict):
        _choice(text.get("verbosity"), _VERBOSITY, "text.verbosity")
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict):
        _choice(reasoning.get("effort"), _EFFORT, "reasoning.effort")
        for key in ("summary", "generate_summary"):
            _choice(reasoning.get(key), _SUMMARY, f"reasoning.{key}")


def check_function_tool(tool: dict[str, Any], where: str) -> None:
    """A function tool's optional fields, of the types the API takes."""
    _typed(tool, "description", str, "a string", where)
    _typed(tool, "parameters", dict, "an object", where)
    _typed(tool, "strict", bool, "a boolean", where)


def _typed(body: dict[str, Any], key: str, kind: type, name: str, where: str | None = None) -> None:
    value = body.get(key)
    param = f"{where}.{key}" if where else key
    if value is not None and not isinstance(value, kind):
        raise BridgeError(f"Invalid type for '{param}': expected {name}.", param)


def _choice(value: object, choices: tuple[str, ...], param: str) -> None:
    if value is None or (isinstance(value, str) and value in choices):
        return
    listed = ", ".join(f"'{c}'" for c in choices)
    raise BridgeError(
        f"Invalid value for '{param}': {value!r}. Supported values are: {listed}.", param
    )


def _decimal(value: object, maximum: float, param: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BridgeError(f"Invalid type for '{param}': expected a decimal.", param)
    if not 0 <= value <= maximum:
        raise BridgeError(
            f"Invalid '{param}': decimal out of range. Expected a value between 0 and "
            f"{maximum:g}, but got {value} instead.",
            param,
        )


def _count(value: object, low: int, high: int, param: str) -> None:
    if value is None:
        return
    if isinstance(value, float) and value.is_integer():  # 2.0 is 2 (see ``whole_count``)
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BridgeError(f"Invalid type for '{param}': expected an integer.", param)
    if not low <= value <= high:
        raise BridgeError(
            f"Invalid '{param}': expected a value between {low} and {high}, but got {value} "
            "instead.",
            param,
        )


def _metadata(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise BridgeError("Invalid type for 'metadata': expected an object.", "metadata")
    if len(value) > _METADATA_KEYS:
        raise BridgeError(
            f"Invalid 'metadata': too many properties. Expected an object with at most "
            f"{_METADATA_KEYS} properties, but got an object with {len(value)} properties "
            "instead.",
            "metadata",
        )
    for key, item in value.items():
        if len(key) > _METADATA_KEY_CHARS:
            raise BridgeError(
                f"Invalid 'metadata': a key longer than {_METADATA_KEY_CHARS} characters.",
                "metadata",
            )
        if not isinstance(item, str):
            raise BridgeError(
                f"Invalid type for 'metadata.{key}': expected a string.", f"metadata.{key}"
            )
        if len(item) > _METADATA_VALUE_CHARS:
            raise BridgeError(
                f"Invalid 'metadata.{key}': string too long. Expected a string with maximum "
                f"length {_METADATA_VALUE_CHARS}.",
                f"metadata.{key}",
            )
