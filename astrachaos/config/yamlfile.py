"""A YAML file as plain data plus the origin (file and line) of every key and list item.

Shared by every YAML file astrachaos reads (scenarios, suites, profiles), so their problems all
name the file and line the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from astrachaos.config.overrides import FieldPath
from astrachaos.config.problems import dotted
from astrachaos.errors import InvalidScenario

_MERGE_TAG = "tag:yaml.org,2002:merge"
# Aliases can expand a small file into a huge tree ("billion laughs"); no scenario comes close.
_MAX_NODES = 100_000
_MAX_DEPTH = 64


@dataclass(frozen=True)
class Origin:
    """Where a value came from: a line of a file, or a command-line argument."""

    source: str
    line: int | None = None

    def __str__(self) -> str:
        return self.source if self.line is None else f"{self.source}, line {self.line}"


Locations = dict[FieldPath, Origin]


def read_text(path: Path, what: str = "scenario") -> str:
    """The file's text (UTF-8, a byte-order mark allowed); any problem is an InvalidScenario."""
    if path.is_dir():
        raise InvalidScenario(f"{path}: is a directory, not a {what} file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        hint = "`astrachaos scenarios list` shows the scenarios known by name"
        raise InvalidScenario(f"{path}: no such file", hint=hint) from None
    except OSError as error:
        raise InvalidScenario(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise InvalidScenario(f"{path}, line {line}: not UTF-8 text") from None


def parse(
    text: str, source: str, what: str = "scenario", empty_ok: bool = False
) -> tuple[dict[str, Any], Locations]:
    """The document as plain data plus the origin of every key and list item.

    Duplicate keys, non-text keys and a document that is not a mapping are refused; an empty
    document is `{}` when `empty_ok`.
    """
    try:
        loader = yaml.SafeLoader(text)  # checks the whole text for unprintable characters
    except yaml.reader.ReaderError as error:
        raise InvalidScenario(_reader_problem(error, text, source)) from None
    try:
        root = loader.get_single_node()
        if root is None and empty_ok:
            return {}, {}
        if root is None:
            hint = "`{}` alone is a scenario" if what == "scenario" else None
            raise InvalidScenario(f"{source}: the file is empty", hint=hint)
        if not isinstance(root, MappingNode):
            raise InvalidScenario(
                f"{Origin(source, _line(root))}: a {what} must be a mapping of fields, not {_kind(root)}"
            )
        walk = _Walk(loader, source)
        walk.visit(root, ())
        if walk.problems:
            raise InvalidScenario("\n".join(walk.problems))
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as error:
        raise InvalidScenario(_yaml_problem(error, source)) from None
    except RecursionError:
        raise InvalidScenario(f"{source}: nested too deeply") from None
    except (ValueError, IndexError, TypeError, OverflowError) as error:
        # PyYAML's constructors raise plain errors on some explicit tags (`!!int ` with no
        # digits, `!!float x`): still the user's file, never a traceback.
        raise InvalidScenario(
            f"{source}: a value cannot be read as its YAML tag says ({type(error).__name__}: {error})"
        ) from None
    finally:
        loader.dispose()
    return data, walk.locations


def _reader_problem(error: yaml.reader.ReaderError, text: str, source: str) -> str:
    line = text[: error.position].count("\n") + 1
    return f"{source}, line {line}: {error.reason} (character {error.character:#06x})"


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _kind(node: Node) -> str:
    if isinstance(node, SequenceNode):
        return "a list"
    return f"the value {node.value!r}"


def _yaml_problem(error: yaml.MarkedYAMLError, source: str) -> str:
    mark = error.problem_mark or error.context_mark
    where = source if mark is None else f"{source}, line {mark.line + 1}, column {mark.column + 1}"
    problem = error.problem or error.context or "invalid YAML"
    if error.problem and error.context and error.context_mark is not None:
        problem = f"{problem} ({error.context} on line {error.context_mark.line + 1})"
    return f"{where}: {problem}"


class _Walk:
    """Records the line of every key and item; collects duplicate and non-text keys."""

    def __init__(self, loader: yaml.SafeLoader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.locations: Locations = {}
        self.problems: list[str] = []
        self._active: set[int] = set()
        self._count = 0

    def visit(self, node: Node, path: FieldPath) -> None:
        """Record `node` at `path`, then its children."""
        self._count += 1
        if self._count > _MAX_NODES:
            raise InvalidScenario(
                f"{self.source}: too large: over {_MAX_NODES} values once aliases are expanded"
            )
        if len(path) > _MAX_DEPTH:
            raise InvalidScenario(f"{self.source}: nested too deeply")
        if id(node) in self._active:
            raise InvalidScenario(f"{Origin(self.source, _line(node))}: an alias refers to itself")
        self._active.add(id(node))
        if isinstance(node, MappingNode):
            self._mapping(node, path)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                self.locations[(*path, index)] = Origin(self.source, _line(item))
                self.visit(item, (*path, index))
        self._active.discard(id(node))

    def _mapping(self, node: MappingNode, path: FieldPath) -> None:
        first_line: dict[str, int] = {}
        for key_node, value_node, explicit in _pairs(node, set()):
            key = self._key(key_node, path)
            if key is None:
                continue
            field = dotted((*path, key))
            if key in first_line:
                if explicit:
                    self.problems.append(
                        f"{Origin(self.source, _line(key_node))}, field {field}: duplicate key "
                        f"{key!r} (first on line {first_line[key]}); YAML would keep only the last"
                    )
                continue
            first_line[key] = _line(key_node)
            self.locations[(*path, key)] = Origin(self.source, _line(key_node))
            self.visit(value_node, (*path, key))

    def _key(self, key_node: Node, path: FieldPath) -> str | None:
        where = f"{Origin(self.source, _line(key_node))}, field {dotted(path) or '(top)'}"
        if not isinstance(key_node, ScalarNode):
            self.problems.append(f"{where}: a key must be text, not a list or mapping")
            return None
        key = self.loader.construct_object(key_node)
        if not isinstance(key, str):
            kind = "null" if key is None else f"{type(key).__name__} {key!r}"
            self.problems.append(
                f"{where}: key {key_node.value!r} is read by YAML as {kind}, not text; quote it"
            )
            return None
        return key


def _pairs(node: MappingNode, seen: set[int]) -> Iterator[tuple[Node, Node, bool]]:
    """Key/value nodes, explicit ones first, then merged (`<<`) ones, as SafeLoader ranks them."""
    seen.add(id(node))
    merged: list[MappingNode] = []
    for key_node, value_node in node.value:
        if key_node.tag != _MERGE_TAG:
            yield key_node, value_node, True
        elif isinstance(value_node, MappingNode):
            merged.append(value_node)
        elif isinstance(value_node, SequenceNode):
            merged.extend(item for item in value_node.value if isinstance(item, MappingNode))
    for source in merged:
        if id(source) not in seen:
            for key_node, value_node, _ in _pairs(source, seen):
                yield key_node, value_node, False


def record(locations: Locations, path: FieldPath, origin: Origin) -> None:
    """`path` now comes from `origin`: forget what the file said at and below it."""
    for known in [known for known in locations if known[: len(path)] == path]:
        del locations[known]
    for end in range(1, len(path) + 1):
        locations.setdefault(path[:end], origin)
    locations[path] = origin


def origin_at(locations: Locations, loc: FieldPath, source: str) -> Origin:
    """The origin of the longest prefix of `loc` that was written somewhere."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in locations:
            return locations[loc[:end]]
    return Origin(source)
