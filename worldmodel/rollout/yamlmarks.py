"""YAML that remembers where each value came from, so a bad field can be reported by file and line."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from worldmodel.errors import UserInputError


class ScenarioError(UserInputError, ValueError):
    """A scenario file that cannot be used, named by file, field and line (the commands print it as one line)."""

    def __init__(self, file: str | Path, field: str, line: int | None, problem: str) -> None:
        self.file, self.field, self.line, self.problem = str(file), field, line, problem
        where = f"{file}:{line}" if line is not None else str(file)
        super().__init__(f"{where}: field '{field}': {problem}")


class MarkedDict(dict):
    """A YAML mapping with the 1-based line of the mapping and of each key's value."""

    line: int = 0
    lines: dict[str, int]


class MarkedList(list):
    """A YAML sequence with the 1-based line of the sequence and of each item."""

    line: int = 0
    lines: list[int]


class MarkedLoader(yaml.SafeLoader):
    """SafeLoader whose mappings and sequences carry the lines of their values."""

    def construct_yaml_map(self, node: yaml.MappingNode):  # type: ignore[override]
        data = MarkedDict()
        data.line, data.lines = node.start_mark.line + 1, {}
        yield data
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a plain value",
                                                        key_node.start_mark)
            if key in data:
                # PyYAML keeps the last duplicate silently; a scenario with two `actions:` is a mistake.
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            data[key] = self.construct_object(value_node, deep=True)
            data.lines[str(key)] = value_node.start_mark.line + 1

    def construct_yaml_seq(self, node: yaml.SequenceNode):  # type: ignore[override]
        data = MarkedList()
        data.line = node.start_mark.line + 1
        data.lines = [item.start_mark.line + 1 for item in node.value]
        yield data
        data.extend(self.construct_object(item, deep=True) for item in node.value)


MarkedLoader.add_constructor("tag:yaml.org,2002:map", MarkedLoader.construct_yaml_map)
MarkedLoader.add_constructor("tag:yaml.org,2002:seq", MarkedLoader.construct_yaml_seq)


def load_marked(path: str | Path) -> Any:
    """Parse a YAML file into MarkedDict / MarkedList / scalars; syntax errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise ScenarioError(path, "<file>", None, "no such file") from err
    try:
        return yaml.load(text, Loader=MarkedLoader)  # noqa: S506 - MarkedLoader is a SafeLoader
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ScenarioError(path, "<yaml>", line, f"not valid YAML ({err.problem or err.context})") from err


def line_of(container: Any, key: str | int) -> int | None:
    """Line of `container[key]` where the loader recorded it, else the container's own line."""
    if isinstance(container, MarkedDict):
        return container.lines.get(str(key), container.line)
    if isinstance(container, MarkedList) and isinstance(key, int) and 0 <= key < len(container.lines):
        return container.lines[key]
    return getattr(container, "line", None)
