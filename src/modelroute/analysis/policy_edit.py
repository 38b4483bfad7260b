"""A new confidence threshold (and signal) written into a policy's text, in place.

Only the values themselves change: every other byte of the file (comments, order, flow or
block style, quoting elsewhere) stays as written. The edited text is loaded again and must
validate and carry the new values, or nothing is returned.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import yaml

from modelroute.errors import PolicyError
from modelroute.policy import load_policy_text


class PolicyEditError(ValueError):
    """The policy text could not be edited as asked (the reason is the message)."""


@dataclass(frozen=True, slots=True)
class Change:
    path: str  # routes.NAME.strategy.confidence.KEY
    line: int  # 1-based, in the original text
    old: str
    new: str


def _child(node: yaml.Node, key: str, where: str) -> yaml.Node:
    if isinstance(node, yaml.MappingNode):
        for key_node, value in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                found: yaml.Node = value
                return found
    raise PolicyEditError(f"the policy has no '{key}' under {where or 'its top level'}")


def _confidence_node(text: str, route: str) -> yaml.Node:
    # The pure-Python loader: its marks count characters of ``text``, what slicing needs.
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is None:
        raise PolicyEditError("the policy file is empty")
    node, where = root, ""
    for key in ("routes", route, "strategy", "confidence"):
        node = _child(node, key, where)
        where = f"{where}.{key}" if where else key
    return node


def _format(threshold: float) -> str:
    return repr(float(threshold))


def set_confidence(
    text: str, file: str, route: str, signal: str, threshold: float
) -> tuple[str, list[Change]]:
    """``text`` with the route's confidence signal and threshold set; the changes made."""
    block = _confidence_node(text, route)
    base = f"routes.{route}.strategy.confidence"
    edits: list[tuple[int, int, str, Change]] = []
    for key, value in (("signal", signal), ("threshold", _format(threshold))):
        node = _child(block, key, base)
        if not isinstance(node, yaml.ScalarNode):
            raise PolicyEditError(f"{base}.{key} is not a plain value")
        start, end = node.start_mark.index, node.end_mark.index
        written = text[start:end]
        if node.value == value or (key == "threshold" and _same_number(node.value, threshold)):
            continue
        change = Change(f"{base}.{key}", node.start_mark.line + 1, written, value)
        edits.append((start, end, value, change))
    edited = text
    for start, end, value, _ in sorted(edits, key=lambda e: e[0], reverse=True):
        edited = edited[:start] + value + edited[end:]
    _check(edited, file, route, signal, threshold)
    return edited, [e[3] for e in sorted(edits, key=lambda e: e[0])]


def _same_number(written: str, value: float) -> bool:
    try:
        return float(written) == value
    except ValueError:
        return False


def _check(text: str, file: str, route: str, signal: str, threshold: float) -> None:
    try:
        policy = load_policy_text(text, file)
    except PolicyError as exc:
        raise PolicyEditError(f"the edited policy does not load:\n{exc}") from None
    rule = policy.routes[route].confidence
    if rule is None or rule.signal != signal or rule.threshold != threshold:
        raise PolicyEditError("the edited policy does not carry the new values")


def unified_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), old_name, new_name
    )
    return "".join(lines)
