"""Whatever a file or a `--set` says, loading returns a Scenario or raises InvalidScenario."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from astrachaos.config.loader import dump_scenario, load_scenario
from astrachaos.errors import InvalidScenario, UsageProblem
from astrachaos.scenario import Scenario

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_counter = itertools.count()


def _names(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _sections() -> dict[str, list[str]]:
    sections = {}
    for name, info in Scenario.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            sections[info.alias or name] = _names(annotation)
    return sections


SECTIONS = _sections()
PATHS = [f"{section}.{field}" for section, fields in SECTIONS.items() for field in fields]
PATHS += [*_names(Scenario), "injectors.0.name", "injectors.0.params.rate", "target.driver.x"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["careful", "unique", "insert", "after", "ONE", "fake"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(PATHS), inner, max_size=3)
    ),
    max_leaves=12,
)


def section(fields: Sequence[str]) -> st.SearchStrategy[object]:
    """A mapping using the section's own field names (plus typos), or any value at all."""
    keys = st.sampled_from(list(fields)) | st.text(min_size=1, max_size=10)
    return st.dictionaries(keys, values, max_size=len(fields)) | values


injector = st.dictionaries(st.sampled_from(["name", "params", "schedule", "nmae"]), values)
shaped = st.fixed_dictionaries(
    {},
    optional={
        **{name: section(fields) for name, fields in SECTIONS.items()},
        "name": st.text(max_size=12) | values,
        "description": st.text(max_size=40) | values,
        "seed": values,
        "injectors": st.lists(injector, max_size=2) | values,
    },
)
set_arguments = st.lists(
    st.text(max_size=30)
    | st.builds(
        "{}={}".format,
        st.sampled_from(PATHS) | st.text(max_size=12),
        st.text(max_size=12) | values.map(lambda value: yaml.safe_dump(value).strip()),
    ),
    max_size=3,
)


TOKENS = [*PATHS, *SECTIONS, ": ", ":", "\n", "  ", "- ", "[", "]", "{", "}", ", ", "&a ", "*a"]
TOKENS += [
    "<<: ",
    "!!str ",
    "!!int ",
    "!x ",
    "'",
    '"',
    "# c",
    "|",
    ">",
    "---\n",
    "? ",
    "~",
    "1",
    "-0.5",
]
TOKENS += ["true", "yes", "on", "null", "1e3", ".inf", "2024-01-01", "careful", "\t", "%YAML 1.1\n"]
yamlish = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)
FULL = yaml.safe_load(
    (Path(__file__).parent.parent / "data" / "scenarios" / "full.yaml").read_text()
)


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def load_or_refuse(path: Path, overrides: Sequence[str] = ()) -> None:
    try:
        scenario = load_scenario(path, overrides)
    except (InvalidScenario, UsageProblem) as error:  # UsageProblem: a --set without PATH=
        assert error.message  # a message a person can read, never empty
        event("refused: " + error.message.split(": ", 1)[-1].split("(")[0][:40])
        return
    event("loaded")
    assert isinstance(scenario, Scenario)
    # What `scenarios show` prints must itself be a valid scenario.
    again = path.with_name(f"{path.stem}-again.yaml")
    again.write_text(dump_scenario(scenario), encoding="utf-8")
    assert isinstance(load_scenario(again), Scenario)


def new_file(directory: Path, content: str | bytes) -> Path:
    path = directory / f"case-{next(_counter)}.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    return path


@FUZZ
@given(text=st.text(max_size=200))
def test_random_text(directory: Path, text: str) -> None:
    load_or_refuse(new_file(directory, text.encode("utf-8", "surrogatepass")))


@FUZZ
@given(text=yamlish)
def test_yaml_like_token_soup(directory: Path, text: str) -> None:
    load_or_refuse(new_file(directory, text))


@FUZZ
@given(content=st.binary(max_size=200))
def test_random_bytes(directory: Path, content: bytes) -> None:
    load_or_refuse(new_file(directory, content))


@FUZZ
@given(document=shaped)
def test_scenario_shaped_documents_of_wrong_types(directory: Path, document: object) -> None:
    load_or_refuse(new_file(directory, yaml.safe_dump(document, allow_unicode=True)))


@FUZZ
@given(document=shaped | st.just(FULL), overrides=set_arguments)
def test_random_set_arguments(directory: Path, document: object, overrides: list[str]) -> None:
    load_or_refuse(new_file(directory, yaml.safe_dump(document)), overrides)
