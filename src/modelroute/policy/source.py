"""YAML text to plain data, remembering where every key and value stands in the file.

PyYAML's composer keeps a mark (line, column) on each node; we walk the node tree once, build
plain dicts/lists/scalars and a map from key path to position, so that any later error (schema
or cross-reference) can name the file, line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from modelroute.errors import Problem

Path = tuple[str | int, ...]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(slots=True)
class Source:
    """A parsed policy file: its data and where each path's key and value were written."""

    file: str
    data: Any
    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)

    def locate(self, path: Path, *, key: bool = False) -> Position | None:
        """The position of ``path``, or of its nearest written ancestor."""
        table = self.keys if key else self.values
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            found = table.get(prefix) or self.keys.get(prefix) or self.values.get(prefix)
            if found is not None:
                return found
        return None

    def problem(
        self,
        path: Path,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
        severity: str = "error",
    ) -> Problem:
        pos = self.locate(path, key=key)
        return Problem(
            file=self.file,
            line=pos.line if pos else None,
            column=pos.column if pos else None,
            path=render_path(path),
            message=message,
            hint=hint,
            severity=severity,
        )


def render_path(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _pos(mark: Any) -> Position:
    return Position(line=mark.line + 1, column=mark.column + 1)


class _Builder:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self._scalars = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.source.values[path] = _pos(node.start_mark)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalars.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(self._at(key_node, path, "a key must be a plain string"))
                continue
            # Keys are names: keep their text, so 'on', 'yes' or '0613' are not read as
            # booleans or numbers (YAML 1.1 would).
            key = str(key_node.value)
            child = (*path, key)
            if key in result:
                self.problems.append(
                    self._at(
                        key_node,
                        child,
                        f"duplicate key {key!r}",
                        "each key may appear once per mapping; remove or merge the copies",
                    )
                )
                continue
            self.source.keys[child] = _pos(key_node.start_mark)
            result[key] = self.build(value_node, child)
        return result

    def _at(self, node: yaml.Node, path: Path, message: str, hint: str | None = None) -> Problem:
        pos = _pos(node.start_mark)
        return Problem(self.source.file, pos.line, pos.column, render_path(path), message, hint)


def parse_yaml(text: str, file: str) -> tuple[Source, list[Problem]]:
    """Parse YAML text. Syntax errors come back as problems, never as exceptions."""
    source = Source(file=file, data=None)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        what = exc.problem or "invalid YAML"
        context = f" {exc.context}" if exc.context else ""
        message = f"YAML syntax error: {what}{context}"
        hint = "check the indentation and that every 'key: value' pair lines up with its siblings"
        return source, [Problem(file, line, column, "", message, hint)]
    except yaml.YAMLError as exc:
        return source, [Problem(file, None, None, "", f"YAML error: {exc}")]
    if root is None:
        hint = "a policy needs at least 'models:' and 'routes:'; see examples/"
        return source, [Problem(file, 1, 1, "", "the policy file is empty", hint)]
    builder = _Builder(source)
    source.data = builder.build(root, ())
    return source, builder.problems
