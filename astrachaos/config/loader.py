"""Scenario YAML in, a validated Scenario out; every problem names its file, line and field."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from astrachaos.config.overrides import FieldPath, apply_override, parse_override
from astrachaos.config.problems import describe_problems, dotted
from astrachaos.config.yamlfile import Locations, Origin, origin_at, parse, read_text, record
from astrachaos.errors import InvalidScenario
from astrachaos.injectors.registry import lookup
from astrachaos.scenario import DriverOverrides, Scenario

_M = TypeVar("_M", bound=BaseModel)
_HINT = "`astrachaos scenarios show NAME` prints every field with its default"
_INJECTOR_HINT = "`astrachaos injectors list` shows the registered injectors"


def load_scenario(
    path: Path,
    overrides: Sequence[str] = (),
    random_seed: int | None = None,
    *,
    with_profiles: bool = False,
) -> Scenario:
    """Read, override and validate one scenario file: InvalidScenario, or UsageProblem for a
    `--set` argument that is not PATH=VALUE.

    `with_profiles`: also load the profiles it names and check its driver options over theirs
    (what a run does before it creates its directory).
    """
    source = str(path)
    data, locations = parse(read_text(path), source)
    data.setdefault("name", path.stem)
    for argument in overrides:
        override = parse_override(argument)
        record(locations, apply_override(data, override), Origin(override.source))
    if random_seed is not None:
        data["seed"] = random_seed
        record(locations, ("seed",), Origin("command line, --seed"))
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        raise InvalidScenario(_describe(error, Scenario, (), locations, source), hint=_HINT) from None
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
    data, locations = parse(read_text(path, what), source, what)
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


def _describe(
    error: ValidationError,
    model: type[BaseModel],
    prefix: FieldPath,
    locations: Locations,
    source: str,
) -> str:
    """One line per pydantic problem: origin (file and line), field, message, offending value."""
    return describe_problems(error, model, prefix, lambda loc: str(origin_at(locations, loc, source)))


def _check_driver_options(
    scenario: Scenario, locations: Locations, source: str, with_profiles: bool
) -> Iterator[str]:
    """`target.driver` and `target.secondary.driver` hold valid driver options.

    Checked over the options' defaults, then (`with_profiles`) over each side's profile: a
    combination only the profile can break (`throttler: rate` without a rate) fails here too,
    before any run directory exists.
    """
    from astrachaos.config.driver_options import DriverOptions
    from astrachaos.config.settings import load_profile

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


def _check_injectors(scenario: Scenario, locations: Locations, source: str) -> Iterator[str]:
    """Each injector is registered and its parameters fit its `Params` model."""
    for index, spec in enumerate(scenario.injectors):
        try:
            factory = lookup(spec.name)
        except InvalidScenario as error:
            loc: FieldPath = ("injectors", index, "name")
            yield f"{origin_at(locations, loc, source)}, field {dotted(loc)}: {error.message}"
            continue
        try:
            factory.Params.model_validate(spec.params)
        except ValidationError as error:
            prefix: FieldPath = ("injectors", index, "params")
            yield _describe(error, factory.Params, prefix, locations, source)
