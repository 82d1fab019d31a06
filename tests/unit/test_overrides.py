"""`--set PATH=VALUE`: parsing, applying, and precedence over the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from astrachaos.config.loader import load_scenario
from astrachaos.config.overrides import apply_override, parse_override
from astrachaos.errors import InvalidScenario, UsageProblem
from astrachaos.injectors import registry
from astrachaos.scenario import PatternName

DATA = Path(__file__).parent.parent / "data" / "scenarios"
FULL = DATA / "full.yaml"


def message(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(InvalidScenario) as caught:
        call(*args, **kwargs)
    return caught.value.message


# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("workload.records=12", 12),
        ("workload.delay_ms=0.5", 0.5),
        ("workload.special_characters=true", True),
        ("workload.rate=null", None),
        ("workload.rate=", None),
        ("schedule.toggle_ms=[1, 2]", [1, 2]),
        ("target.driver={a: 1}", {"a": 1}),
        ("pattern.name=careful", "careful"),
        ("description=a=b", "a=b"),
        ("description='12'", "12"),
    ],
)
def test_a_value_is_read_as_yaml(argument: str, value: object) -> None:
    assert parse_override(argument).value == value


def test_the_path_is_split_on_dots() -> None:
    assert parse_override("injectors.0.params.rate=0.3").path == (
        "injectors",
        "0",
        "params",
        "rate",
    )


@pytest.mark.parametrize("argument", ["workload.records", "=5", "workload..records=5", "a.=1"])
def test_a_malformed_argument_is_a_usage_error_that_names_it(argument: str) -> None:
    with pytest.raises(UsageProblem) as caught:
        parse_override(argument)
    assert caught.value.message == f"command line, --set {argument}: expected PATH=VALUE"
    assert caught.value.exit_code == 2


def test_a_malformed_value_is_named() -> None:
    assert message(parse_override, "workload.rate=[1,") == (
        "command line, --set workload.rate=[1,: expected the node content, but found '<stream end>'"
    )


def test_aliases_are_not_allowed_in_a_value() -> None:
    assert message(parse_override, "target.driver=&a [*a]") == (
        "command line, --set target.driver=&a [*a]: anchors and aliases are not allowed in a value"
    )


# --- applying to raw data -----------------------------------------------------------------------


def test_missing_sections_are_created() -> None:
    data: dict[str, Any] = {}
    path = apply_override(data, parse_override("target.driver.max_queue_size=50"))
    assert data == {"target": {"driver": {"max_queue_size": 50}}}
    assert path == ("target", "driver", "max_queue_size")


def test_a_list_index_reaches_into_a_list() -> None:
    data: dict[str, Any] = {"injectors": [{"name": "a", "params": {}}]}
    path = apply_override(data, parse_override("injectors.0.params.rate=0.3"))
    assert data["injectors"][0]["params"] == {"rate": 0.3}
    assert path == ("injectors", 0, "params", "rate")


def test_an_index_one_past_the_end_appends() -> None:
    data: dict[str, Any] = {}
    apply_override(data, parse_override("injectors.0.name=client-error"))
    assert data == {"injectors": [{"name": "client-error"}]}


def test_a_null_section_is_replaced_by_a_mapping() -> None:
    data: dict[str, Any] = {"pattern": {"session_reset": None}}
    apply_override(data, parse_override("pattern.session_reset.after_records=5"))
    assert data == {"pattern": {"session_reset": {"after_records": 5}}}


def test_an_index_past_the_end_is_named() -> None:
    data: dict[str, Any] = {"injectors": [{"name": "a"}]}
    assert message(apply_override, data, parse_override("injectors.3.name=b")) == (
        "command line, --set injectors.3.name=b: injectors has 1 item(s); "
        "'3' is not an index from 0 to 1"
    )


def test_a_path_through_a_value_is_named() -> None:
    data: dict[str, Any] = {"workload": {"records": 5}}
    assert message(apply_override, data, parse_override("workload.records.x=1")) == (
        "command line, --set workload.records.x=1: workload.records is 5, not a section or a list"
    )


# --- through the loader -------------------------------------------------------------------------


def test_overrides_replace_file_values() -> None:
    scenario = load_scenario(
        FULL,
        [
            "workload.records=5000",
            "pattern.name=careful",
            "target.driver.max_queue_size=50",
        ],
    )
    assert scenario.workload.records == 5000
    assert scenario.pattern.name is PatternName.CAREFUL
    assert scenario.target.driver.as_options() == {"max_queue_size": 50, "request_timeout_ms": 2000}


def test_an_unknown_path_names_the_set_argument() -> None:
    assert message(load_scenario, FULL, ["workload.recrods=5"]) == (
        "command line, --set workload.recrods=5, field workload.recrods: "
        "unknown field 'recrods'; did you mean 'records'?"
    )


def test_an_unknown_section_names_the_set_argument() -> None:
    assert message(load_scenario, FULL, ["wrkload.records=5"]) == (
        "command line, --set wrkload.records=5, field wrkload: "
        "unknown field 'wrkload'; did you mean 'workload'?"
    )


def test_an_invalid_value_is_validated_by_the_same_model() -> None:
    assert message(load_scenario, FULL, ["workload.batch_size=0"]) == (
        "command line, --set workload.batch_size=0, field workload.batch_size: "
        "Input should be greater than or equal to 1 (got 0)"
    )


def test_an_override_can_fix_a_bad_file_value(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("workload:\n  batch_size: 0\n")
    assert load_scenario(path, ["workload.batch_size=5"]).workload.batch_size == 5


def test_a_replaced_section_forgets_the_file_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("workload:\n  writers: 2\n  batch_size: 3\n")
    assert message(load_scenario, path, ["workload={batch_size: 0}"]) == (
        "command line, --set workload={batch_size: 0}, field workload.batch_size: "
        "Input should be greater than or equal to 1 (got 0)"
    )


def test_file_errors_and_override_errors_are_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("description: d\nworkload:\n  writers: 0\n")
    assert message(load_scenario, path, ["verify.page_size=0"]).splitlines() == [
        f"{path}, line 3, field workload.writers: Input should be greater than or equal to 1 "
        "(got 0)",
        "command line, --set verify.page_size=0, field verify.page_size: "
        "Input should be greater than or equal to 1 (got 0)",
    ]


class _Fake:
    name: ClassVar[str] = "fake"
    kind: ClassVar[str] = "client"

    class Params(BaseModel):
        rate: float = 0.1


def test_an_injector_parameter_can_be_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "available", lambda: {"fake": _Fake})
    scenario = load_scenario(
        FULL, ["injectors.0.name=fake", "injectors.0.params.rate=0.3", "injectors.0.params.x=1"]
    )
    assert scenario.injectors[0].params == {"rate": 0.3, "x": 1}


# --- precedence ---------------------------------------------------------------------------------


def test_a_later_override_wins_over_an_earlier_one() -> None:
    assert load_scenario(FULL, ["seed=1", "seed=2"]).random_seed == 2


def test_the_seed_argument_wins_over_file_and_overrides() -> None:
    assert load_scenario(FULL).random_seed == 42
    assert load_scenario(FULL, ["seed=7"]).random_seed == 7
    assert load_scenario(FULL, ["seed=7"], random_seed=9).random_seed == 9


def test_the_name_override_wins_over_the_file_stem() -> None:
    assert load_scenario(DATA / "minimal.yaml", ["name=renamed"]).name == "renamed"
