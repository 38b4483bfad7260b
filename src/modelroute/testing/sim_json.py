"""JSON answers for ``response_format``: what the simulator says when a client asks for JSON.

A configured answer that already is a JSON object is sent as it is (a test that needs a
particular object writes it in the answer table). Any other answer is wrapped: in
``{"answer": ...}`` for ``json_object``, or, for ``json_schema``, into the smallest instance of
the schema (every listed property present, strings carrying the answer text, the first value
of an enum, 0, false, empty arrays). Formats, patterns and numeric bounds are not honoured:
the instance has the schema's shape and types, which is what clients parse against.
"""

from __future__ import annotations

from typing import Any

import orjson

_MAX_DEPTH = 12  # recursive schemas ($ref cycles) stop here with null


def json_content(text: str, schema: Any) -> str:
    """``text`` as JSON content for a JSON-mode answer; ``schema`` is ``None`` for
    ``json_object`` (or a ``json_schema`` format that gave no schema)."""
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        return text
    if not isinstance(schema, dict):
        return orjson.dumps({"answer": text}).decode()
    return orjson.dumps(_instance(schema, schema, text, 0)).decode()


def _instance(node: Any, root: dict[str, Any], text: str, depth: int) -> Any:
    if not isinstance(node, dict) or depth > _MAX_DEPTH:
        return None
    ref = node.get("$ref")
    if isinstance(ref, str):
        return _instance(_resolve(ref, root), root, text, depth + 1)
    if "const" in node:
        return node["const"]
    enum = node.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = node.get(key)
        if isinstance(options, list) and options:
            return _instance(options[0], root, text, depth + 1)
    kind = node.get("type")
    if isinstance(kind, list):  # e.g. ["string", "null"]: the first non-null type
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in node):
        properties = node.get("properties")
        if not isinstance(properties, dict):
            return {}
        return {name: _instance(sub, root, text, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        least = node.get("minItems")
        count = least if isinstance(least, int) and 0 < least <= 8 else 0
        return [_instance(node.get("items"), root, text, depth + 1) for _ in range(count)]
    return _SCALARS.get(kind, text)  # strings (and untyped values) carry the answer


_SCALARS: dict[Any, Any] = {"integer": 0, "number": 0, "boolean": False, "null": None}


def _resolve(ref: str, root: dict[str, Any]) -> Any:
    """A local reference (``#/$defs/Name``); anything else resolves to nothing."""
    if not ref.startswith("#"):
        return None
    node: Any = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if not part:
            continue
        if not isinstance(node, dict):
            return None
        node = node.get(part.replace("~1", "/").replace("~0", "~"))
    return node
