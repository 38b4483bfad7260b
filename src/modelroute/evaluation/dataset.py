"""Evaluation datasets: labelled prompts, each with its reference answer and grader.

A JSONL dataset has one object a line::

    {"id": "q1", "task": "geography",
     "messages": [{"role": "user", "content": "Capital of France?"}],
     "reference": "Paris", "grader": "exact"}

``messages`` (or ``prompt``, a string taken as one user message) is required; ``grader`` is
required unless a default grader is given; ``reference`` may be left out only for graders
that need none (a judge with a rubric, a regex of its own). ``id`` and ``task`` are optional.
Every line is checked before anything is sent: a bad line stops the run with its number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from modelroute.grading import Grader, GraderSpecError
from modelroute.outcomes import prompt_hash

LINE_KEYS = frozenset({"id", "task", "messages", "prompt", "reference", "grader"})

# Builds the grader of a spec (raising GraderSpecError): the engine-backed registry's ``get``.
CheckGrader = Callable[[Any], Grader]


class DatasetError(ValueError):
    """A dataset that cannot be used as it is; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class EvalItem:
    messages: list[dict[str, Any]]
    reference: Any
    grader: Any  # the spec, as ``grading.Graders.get`` takes it
    prompt_hash: str
    id: str | None = None
    task: str | None = None
    line: int = 0  # where it came from, for messages


@dataclass(slots=True)
class Dataset:
    name: str
    items: list[EvalItem]
    # prompts left out, by reason ("MBPP code: no automatic grader ..."): counted, never scored
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + count


def user_message(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def _messages(raw: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    if "messages" in raw and "prompt" in raw:
        raise DatasetError(f"{where}: give 'messages' or 'prompt', not both")
    if "prompt" in raw:
        prompt = raw["prompt"]
        if not isinstance(prompt, str) or not prompt:
            raise DatasetError(f"{where}: 'prompt' must be a non-empty string")
        return user_message(prompt)
    messages = raw.get("messages")
    if not isinstance(messages, list) or not messages:
        raise DatasetError(f"{where}: 'messages' must be a non-empty list (or give 'prompt')")
    for message in messages:
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise DatasetError(f"{where}: each message needs 'role' and 'content'")
    return messages


def _optional_text(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DatasetError(f"{where}: '{key}' must be a string")
    return str(value)


def item_from_line(
    raw: Any, where: str, line: int, default_grader: Any, check: CheckGrader
) -> EvalItem:
    if not isinstance(raw, dict):
        raise DatasetError(f"{where}: each line must be a JSON object")
    unknown = set(raw) - LINE_KEYS
    if unknown:
        known = ", ".join(sorted(LINE_KEYS))
        raise DatasetError(f"{where}: unknown key(s) {sorted(unknown)}; a line has {known}")
    messages = _messages(raw, where)
    grader = raw.get("grader", default_grader)
    if grader is None:
        raise DatasetError(f"{where}: no 'grader' (or pass a default grader)")
    try:
        built = check(grader)
    except GraderSpecError as exc:
        raise DatasetError(f"{where}: {exc}") from None
    reference = raw.get("reference")
    if reference is None and built.needs_reference:
        raise DatasetError(f"{where}: no 'reference' for grader {built.name!r}")
    return EvalItem(
        messages=messages,
        reference=reference,
        grader=grader,
        prompt_hash=prompt_hash(messages),
        id=_optional_text(raw, "id", where),
        task=_optional_text(raw, "task", where),
        line=line,
    )


class _Seen:
    """Each prompt once: a repeated id, or a repeated prompt without ids, is an error (the
    two would be one measurement, and a resumed run could not tell them apart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lines: dict[str, int] = {}

    def add(self, item: EvalItem) -> None:
        key = f"id:{item.id}" if item.id is not None else f"prompt:{item.prompt_hash}"
        first = self._lines.setdefault(key, item.line)
        if first != item.line:
            what = f"id {item.id!r}" if item.id is not None else "prompt (give each an 'id')"
            raise DatasetError(f"{self.path}:{item.line}: repeats the {what} of line {first}")


def _lines(path: Path) -> Iterable[tuple[int, bytes]]:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise DatasetError(f"dataset not found: {path}") from None
    except IsADirectoryError:
        raise DatasetError(f"{path} is a directory without prompts.jsonl.gz") from None
    except OSError as exc:
        raise DatasetError(f"cannot read dataset {path}: {exc.strerror}") from None
    with handle:
        yield from enumerate(handle, start=1)


def load_jsonl(
    path: Path, check: CheckGrader, default_grader: Any = None, limit: int | None = None
) -> Dataset:
    """The first ``limit`` prompts of a JSONL dataset, every line checked."""
    dataset = Dataset(path.stem, [])
    seen = _Seen(path)
    for number, raw_line in _lines(path):
        if limit is not None and len(dataset.items) >= limit:
            break
        if not raw_line.strip():
            continue
        where = f"{path}:{number}"
        try:
            raw = orjson.loads(raw_line)
        except orjson.JSONDecodeError as exc:
            raise DatasetError(f"{where}: not valid JSON ({exc})") from None
        item = item_from_line(raw, where, number, default_grader, check)
        seen.add(item)
        dataset.items.append(item)
    if not dataset.items:
        raise DatasetError(f"{path}: no prompts in the dataset")
    return dataset
