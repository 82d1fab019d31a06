"""Scenario YAML in, a validated Scenario out; every problem names its file, line and field."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from astrachaos.config.overrides import FieldPath, apply_override, parse_override
from astrachaos.config.problems import describe_problems, dotted
from astrachaos.errors import InvalidScenario
from astrachaos.injectors.registry import lookup
from astrachaos.scenario import DriverOverrides, Scenario

_MERGE_TAG = "tag:yaml.org,2002:merge"
# Aliases can expand a small file into a huge tree ("billion laughs"); no scenario comes close.
_MAX_NODES = 100_000
_MAX_DEPTH = 64
_T = TypeVar("_T")
_M = TypeVar("_M", bound=BaseModel)
_HINT = "`astrachaos scenarios show NAME` prints every field with its default"
_INJECTOR_HINT = "`astrachaos injectors list` shows the registered injectors"


@dataclass(frozen=True)
class _Origin:
    """Where a value came from: a line of a file, or a command-line argument."""

    source: str
    line: int | None = None

    def __str__(self) -> str:
        return self.source if self.line is None else f"{self.source}, line {self.line}"


_Locations = dict[FieldPath, _Origin]


def load_scenario(
    path: Path,
    overrides: Sequence[str] = (),
    seed: int | None = None,
    *,
    with_profiles: bool = False,
) -> Scenario:
    """Read, override and validate one scenario file; any problem is an InvalidScenario.

    `with_profiles`: also load the profiles it names and check its driver options over theirs
    (what a run does before it creates its directory).
    """
    source = str(path)
    data, locations = _parse(_read(path), source)
    data.setdefault("name", path.stem)
    for argument in overrides:
        override = parse_override(argument)
        _record(locations, apply_override(data, override), _Origin(override.source))
    if seed is not None:
        data["seed"] = seed
        _record(locations, ("seed",), _Origin("command line, --seed"))
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        raise InvalidScenario(
            _describe(error, Scenario, (), locations, source), hint=_HINT
        ) from None
    problems = list(_check_driver_options(scenario, locations, source, with_profiles))
    if problems:
        hint = "`astrachaos config show` lists every driver option with its value"
        raise InvalidScenario("\n".join(problems), hint=hint)
    problems = list(_check_injectors(scenario, locations, source))
    if problems:
        raise InvalidScenario("\n".join(problems), hint=_INJECTOR_HINT)
    return scenario


def load_model(path: Path, model: type[_M], what: str) -> _M:
    """Read and validate a YAML file of another kind (`what`: "suite", ...) the way scenarios are.

    The one formatter of YAML and validation problems: file, line, field, a did-you-mean.
    """
    source = str(path)
    data, locations = _parse(_read(path, what), source, what)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidScenario(_describe(error, model, (), locations, source)) from None


def dump_scenario(scenario: Scenario) -> str:
    """The scenario as YAML with every default filled in; loading it gives the same scenario."""
    plain = _plain(scenario.model_dump(by_alias=True))
    return yaml.dump(plain, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


class _Dumper(yaml.SafeDumper):
    """Writes multi-line text as a `|` block, the way people write descriptions."""


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _text)


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value.value if isinstance(value, Enum) else value


def _read(path: Path, what: str = "scenario") -> str:
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


def _parse(text: str, source: str, what: str = "scenario") -> tuple[dict[str, Any], _Locations]:
    """The document as plain data plus the origin of every key and list item."""
    try:
        loader = yaml.SafeLoader(text)  # checks the whole text for unprintable characters
    except yaml.reader.ReaderError as error:
        raise InvalidScenario(_reader_problem(error, text, source)) from None
    try:
        root = loader.get_single_node()
        if root is None:
            hint = "`{}` alone is a scenario" if what == "scenario" else None
            raise InvalidScenario(f"{source}: the file is empty", hint=hint)
        if not isinstance(root, MappingNode):
            raise InvalidScenario(
                f"{_Origin(source, _line(root))}: a {what} must be a mapping of fields, "
                f"not {_kind(root)}"
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
        self.locations: _Locations = {}
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
            raise InvalidScenario(f"{_Origin(self.source, _line(node))}: an alias refers to itself")
        self._active.add(id(node))
        if isinstance(node, MappingNode):
            self._mapping(node, path)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                self.locations[(*path, index)] = _Origin(self.source, _line(item))
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
                        f"{_Origin(self.source, _line(key_node))}, field {field}: duplicate key "
                        f"{key!r} (first on line {first_line[key]}); YAML would keep only the last"
                    )
                continue
            first_line[key] = _line(key_node)
            self.locations[(*path, key)] = _Origin(self.source, _line(key_node))
            self.visit(value_node, (*path, key))

    def _key(self, key_node: Node, path: FieldPath) -> str | None:
        where = f"{_Origin(self.source, _line(key_node))}, field {dotted(path) or '(top)'}"
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


def _record(locations: _Locations, path: FieldPath, origin: _Origin) -> None:
    """`path` now comes from `origin`: forget what the file said at and below it."""
    for known in [known for known in locations if known[: len(path)] == path]:
        del locations[known]
    for end in range(1, len(path) + 1):
        locations.setdefault(path[:end], origin)
    locations[path] = origin


def _origin(locations: _Locations, loc: FieldPath, source: str) -> _Origin:
    """The origin of the longest prefix of `loc` that was written somewhere."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in locations:
            return locations[loc[:end]]
    return _Origin(source)


def _describe(
    error: ValidationError,
    model: type[BaseModel],
    prefix: FieldPath,
    locations: _Locations,
    source: str,
) -> str:
    """One line per pydantic problem: origin (file and line), field, message, offending value."""
    return describe_problems(error, model, prefix, lambda loc: str(_origin(locations, loc, source)))


def _check_driver_options(
    scenario: Scenario, locations: _Locations, source: str, with_profiles: bool
) -> Iterator[str]:
    """`target.driver` and `target.secondary.driver` hold valid driver options.

    Checked over the options' defaults, then (`with_profiles`) over each side's profile: a
    combination only the profile can break (`throttler: rate` without a rate) fails here too,
    before any run directory exists.
    """
    from astrachaos.config.settings import DriverOptions, load_profile

    sides: list[tuple[FieldPath, str, DriverOverrides]] = [
        (("target", "driver"), scenario.target.profile, scenario.target.driver)
    ]
    secondary = scenario.target.secondary
    if secondary is not None:
        sides.append((("target", "secondary", "driver"), secondary.profile, secondary.driver))
    for prefix, profile_name, overrides in sides:
        if not overrides:
            continue
        combined: ValidationError | None = None
        if with_profiles:
            profile = load_profile(profile_name).profile
            try:
                DriverOptions.model_validate(profile.driver_options_with(overrides))
                continue
            except ValidationError as error:
                combined = error
        try:
            DriverOptions.model_validate(overrides.as_options())
        except ValidationError as error:
            yield _describe(error, DriverOptions, prefix, locations, source)
            continue
        if combined is not None:  # fine alone, wrong over this profile's options
            problems = _describe(combined, DriverOptions, prefix, locations, source)
            yield "\n".join(
                f"{line} (over the driver options of profile {profile_name!r})"
                for line in problems.splitlines()
            )


def _check_injectors(scenario: Scenario, locations: _Locations, source: str) -> Iterator[str]:
    """Each injector is registered and its parameters fit its `Params` model."""
    for index, spec in enumerate(scenario.injectors):
        try:
            factory = lookup(spec.name)
        except InvalidScenario as error:
            loc: FieldPath = ("injectors", index, "name")
            yield f"{_origin(locations, loc, source)}, field {dotted(loc)}: {error.message}"
            continue
        try:
            factory.Params.model_validate(spec.params)
        except ValidationError as error:
            prefix: FieldPath = ("injectors", index, "params")
            yield _describe(error, factory.Params, prefix, locations, source)
