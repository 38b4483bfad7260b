"""Extended thinking on the simulator's Anthropic wire: the request rules the real API
enforces, and the thinking block the simulated model writes.

The rules: ``thinking`` is ``enabled`` (with ``budget_tokens`` >= 1024 and below
``max_tokens``), ``adaptive``, ``between_tools`` or ``disabled``; while thinking, sampling
changes (``temperature`` other than 1, ``top_k``) and forced tool use are refused, and in a
tool loop the final assistant turn must start with the thinking block it was answered with,
its signature intact.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from modelroute.testing.sim_engine import split_tokens
from modelroute.testing.sim_wire import BadRequest

MIN_BUDGET = 1024
THOUGHT = "The user wants an answer; I will check what I know and reply briefly."
THOUGHT_TOKENS = split_tokens(THOUGHT)
_THINKING_TYPES = ("enabled", "disabled", "adaptive", "between_tools")
_THINKING_BLOCKS = ("thinking", "redacted_thinking")


def signature(thinking: str) -> str:
    """Opaque like the real one, but checkable: any change to the thinking breaks it."""
    return base64.b64encode(hashlib.sha256(b"sim:" + thinking.encode()).digest()).decode()


def thinking_block() -> dict[str, Any]:
    return {"type": "thinking", "thinking": THOUGHT, "signature": signature(THOUGHT)}


def thinks(body: dict[str, Any], max_tokens: int) -> bool:
    """Whether the request asks for thinking; ``BadRequest`` for what the API refuses."""
    config = body.get("thinking")
    if config is None:
        return False
    kind = config.get("type") if isinstance(config, dict) else None
    if kind not in _THINKING_TYPES:
        expected = ", ".join(f"'{t}'" for t in _THINKING_TYPES)
        raise BadRequest(
            f"thinking: Input tag {kind!r} found using 'type' does not match any of the "
            f"expected tags: {expected}"
        )
    assert isinstance(config, dict)
    if kind == "disabled":
        return False
    if kind == "enabled":
        budget = config.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < MIN_BUDGET:
            raise BadRequest(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to "
                f"{MIN_BUDGET}"
            )
        if max_tokens <= budget:
            raise BadRequest("`max_tokens` must be greater than `thinking.budget_tokens`")
    _check_compatible(body)
    return True


def _check_compatible(body: dict[str, Any]) -> None:
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        raise BadRequest("`temperature` may only be set to 1 when thinking is enabled")
    if body.get("top_k") is not None:
        raise BadRequest("`top_k` is not supported when thinking is enabled")
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        raise BadRequest("Thinking may not be enabled when `tool_choice` forces tool use.")


def check_history(messages: list[Any], thinking: bool) -> None:
    """Thinking blocks sent back must be unaltered; while thinking, a tool loop's last
    assistant turn must start with one."""
    last_assistant: int | None = None
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        last_assistant = i
        content = message.get("content")
        for j, block in enumerate(content if isinstance(content, list) else []):
            if isinstance(block, dict) and block.get("type") == "thinking":
                text, sig = block.get("thinking"), block.get("signature")
                if not isinstance(text, str) or sig != signature(text):
                    raise BadRequest(
                        f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                    )
    if not thinking or last_assistant is None or not _after_tool_use(messages, last_assistant):
        return
    content = messages[last_assistant].get("content")
    first = content[0] if isinstance(content, list) and content else None
    kind = first.get("type") if isinstance(first, dict) else "text"
    if kind not in _THINKING_BLOCKS:
        raise BadRequest(
            f"messages.{last_assistant}.content.0.type: Expected `thinking` or "
            f"`redacted_thinking`, but found `{kind}`. When `thinking` is enabled, a final "
            "`assistant` message must start with a thinking block (preceeding the lastmost "
            "set of `tool_use` and `tool_result` blocks)."
        )


def _after_tool_use(messages: list[Any], assistant: int) -> bool:
    content = messages[assistant].get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_use" for b in content
    )
