"""Scenario YAML loading: every problem names its file, line and field; `scenarios` commands."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import typer
import yaml
from pydantic import BaseModel, Field
from typer.testing import CliRunner

from astrachaos.config.loader import dump_scenario, load_scenario
from astrachaos.errors import InvalidScenario
from astrachaos.injectors import registry
from astrachaos.scenario import KeyStrategy, PatternName, Scenario, StatementKind

DATA = Path(__file__).parent.parent / "data" / "scenarios"


def write(tmp_path: Path, text: str, name: str = "x.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problem(path: Path, text: str = "") -> str:
    """The InvalidScenario message of loading `path` (after writing `text` to it, if given)."""
    if text:
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    with pytest.raises(InvalidScenario) as caught:
        load_scenario(path)
    return caught.value.message


# --- valid files -----------------------------------------------------------------------------


def test_full_example_loads_every_section() -> None:
    scenario = load_scenario(DATA / "full.yaml")
    assert scenario.name == "full-example"
    assert scenario.random_seed == 42
    assert scenario.description.splitlines()[1] == "Second line of the description."
    assert scenario.target.driver.as_options() == {"max_queue_size": 100, "request_timeout_ms": 2000}
    assert scenario.schema_.buckets == 8
    assert scenario.workload.writers == 4
    assert scenario.workload.statement is StatementKind.UNLOGGED_BATCH
    assert scenario.pattern.name is PatternName.FIRE_AND_FORGET
    assert scenario.verify.reread_consistency == "QUORUM"
    assert scenario.expect.dropped == 100


def test_name_defaults_to_the_file_stem() -> None:
    scenario = load_scenario(DATA / "minimal.yaml")
    assert scenario.name == "minimal"
    assert scenario.workload.key_strategy is KeyStrategy.UNIQUE


def test_an_empty_mapping_is_a_scenario_with_every_default(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, "{}\n", "bare.yaml"))
    assert scenario == Scenario(name="bare")


def test_anchors_and_merge_keys_work_and_explicit_keys_win(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        target:
          driver: &base {max_queue_size: 10, request_timeout_ms: 100}
        verify:
          settle_ms: 5
        expect: {}
        pattern:
          name: careful
        workload:
          <<: {writers: 2, records: 7}
          writers: 3
        """,
    )
    scenario = load_scenario(path)
    assert (scenario.workload.writers, scenario.workload.records) == (3, 7)
    assert scenario.target.driver.max_queue_size == 10


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfdescription: with a BOM\n")
    assert load_scenario(path).description == "with a BOM"


# --- validation errors: file, line, field ------------------------------------------------------


def test_out_of_range_value_names_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "workload:\n  records: 10\n  batch_size: 0\n")
    assert problem(path) == (
        f"{path}, line 3, field workload.batch_size: "
        "Input should be greater than or equal to 1 (got 0)"
    )


def test_several_problems_are_listed_one_per_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        schema:
          buckets: many
        workload:
          writers: 0
          key_strategy: random
        """,
    )
    assert problem(path).splitlines() == [
        f"{path}, line 2, field schema.buckets: Input should be a valid integer, "
        "unable to parse string as an integer (got 'many')",
        f"{path}, line 4, field workload.writers: Input should be greater than or equal to 1 "
        "(got 0)",
        f"{path}, line 5, field workload.key_strategy: Input should be 'unique', 'timestamp_ms' "
        "or 'shared' (got 'random')",
    ]


def test_unknown_field_suggests_the_closest_known_name(tmp_path: Path) -> None:
    path = write(tmp_path, "workload:\n  writers: 2\n  recrods: 5\n")
    assert problem(path) == (
        f"{path}, line 3, field workload.recrods: unknown field 'recrods'; did you mean 'records'?"
    )


def test_unknown_section_suggests_the_aliased_schema_section(tmp_path: Path) -> None:
    path = write(tmp_path, "description: d\nschemas:\n  buckets: 2\n")
    assert problem(path) == (
        f"{path}, line 2, field schemas: unknown field 'schemas'; did you mean 'schema'?"
    )


def test_unknown_field_without_a_close_name_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "verify:\n  zzz: 1\n")
    assert problem(path) == (
        f"{path}, line 2, field verify.zzz: unknown field 'zzz'; known fields: "
        "settle_ms, read_consistency, reread_consistency, page_size"
    )


def test_wrong_type_for_a_section_names_the_value(tmp_path: Path) -> None:
    path = write(tmp_path, "description: d\nworkload: [1, 2]\n")
    assert problem(path) == (
        f"{path}, line 2, field workload: "
        "Input should be a valid dictionary or instance of Workload (got [1, 2])"
    )


def test_misspelt_choice_suggests_the_closest_member(tmp_path: Path) -> None:
    path = write(tmp_path, "pattern:\n  name: fire-and-forgot\n")
    assert problem(path) == (
        f"{path}, line 2, field pattern.name: unknown pattern 'fire-and-forgot' (did you mean "
        "'fire-and-forget'?); registered: careful, empty-retry, fire-and-forget, uploader; or your own as "
        "'package.module:factory' (got 'fire-and-forgot')"
    )


def test_missing_required_field_names_the_line_of_its_entry(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        injectors:
          - name: a
          - params: {rate: 1}
            schedule: {start_s: 1}
        """,
    )
    assert problem(path) == f"{path}, line 3, field injectors.1.name: Field required"


def test_a_yes_no_key_is_not_text_and_must_be_quoted(tmp_path: Path) -> None:
    path = write(tmp_path, "target:\n  driver:\n    on: 1\n")
    assert problem(path) == (
        f"{path}, line 3, field target.driver: key 'on' is read by YAML as bool True, "
        "not text; quote it"
    )


def test_a_list_as_a_key_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "description: d\n? [a, b]\n: 1\n")
    expected = f"{path}, line 2, field (top): a key must be text, not a list or mapping"
    assert problem(path) == expected


# --- duplicate keys ------------------------------------------------------------------------------


def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "workload:\n  records: 10\n  writers: 2\n  records: 20\n")
    assert problem(path) == (
        f"{path}, line 4, field workload.records: duplicate key 'records' (first on line 2); "
        "YAML would keep only the last"
    )


def test_duplicate_sections_are_all_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 1\nworkload: {}\nseed: 2\nworkload: {}\n")
    assert problem(path).splitlines() == [
        f"{path}, line 3, field seed: duplicate key 'seed' (first on line 1); "
        "YAML would keep only the last",
        f"{path}, line 4, field workload: duplicate key 'workload' (first on line 2); "
        "YAML would keep only the last",
    ]


# --- malformed YAML ----------------------------------------------------------------------------


def test_malformed_yaml_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "workload:\n  records: 5\n  writers: 2: 3\n")
    assert problem(path) == f"{path}, line 3, column 13: mapping values are not allowed here"


def test_an_unclosed_flow_list_names_the_end_of_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "description: d\ninjectors: [\n")
    assert problem(path) == (
        f"{path}, line 3, column 1: expected the node content, but found '<stream end>' "
        "(while parsing a flow node on line 3)"
    )


def test_several_documents_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 1\n---\nseed: 2\n")
    assert problem(path) == (
        f"{path}, line 2, column 1: but found another document "
        "(expected a single document in the stream on line 1)"
    )


def test_python_tags_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "description: !!python/object/apply:os.system [true]\n")
    assert problem(path).startswith(f"{path}, line 1, column 14: could not determine a constructor")


def test_control_characters_name_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 1\ndescription: a\x07b\n")
    assert problem(path) == (
        f"{path}, line 2: special characters are not allowed (character 0x0007)"
    )


def test_a_recursive_alias_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "target:\n  driver:\n    loop: &a [1, *a]\n")
    assert problem(path) == f"{path}, line 3: an alias refers to itself"


def test_an_alias_bomb_is_rejected(tmp_path: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    path = write(tmp_path, "target:\n  driver:\n" + "".join(f"    {line}\n" for line in levels))
    expected = f"{path}: too large: over 100000 values once aliases are expanded"
    assert problem(path) == expected


@pytest.mark.parametrize("depth", [100, 700])  # caught by the loader, and by the YAML composer
def test_deep_nesting_is_rejected(tmp_path: Path, depth: int) -> None:
    path = write(tmp_path, "description: " + "[" * depth + "]" * depth + "\n")
    assert problem(path) == f"{path}: nested too deeply"


# --- not a scenario at all -----------------------------------------------------------------------


def test_an_empty_file_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    assert problem(path) == f"{path}: the file is empty"


def test_a_file_of_comments_only_is_empty(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing here\n")
    assert problem(path) == f"{path}: the file is empty"


def test_a_list_is_not_a_scenario(tmp_path: Path) -> None:
    path = write(tmp_path, "# a list\n- name: a\n")
    assert problem(path) == f"{path}, line 2: a scenario must be a mapping of fields, not a list"


def test_a_scalar_is_not_a_scenario(tmp_path: Path) -> None:
    path = write(tmp_path, "hello\n")
    expected = f"{path}, line 1: a scenario must be a mapping of fields, not the value 'hello'"
    assert problem(path) == expected


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    assert problem(tmp_path / "absent.yaml") == f"{tmp_path / 'absent.yaml'}: no such file"


def test_a_directory_is_not_a_scenario(tmp_path: Path) -> None:
    assert problem(tmp_path) == f"{tmp_path}: is a directory, not a scenario file"


def test_an_unreadable_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "{}\n")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    # Tests may run as root, where chmod 000 still reads; the loader sees the same error either way.
    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert problem(path) == f"{path}: cannot read: Permission denied"


def test_a_binary_file_names_the_first_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(b"seed: 1\n\xff\xfe\n")
    assert problem(path) == f"{path}, line 2: not UTF-8 text"


# --- injectors ----------------------------------------------------------------------------------


def test_unknown_injector_names_the_line_of_its_entry(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        description: d
        injectors:
          - name: no-such-injector
            params: {rate: 0.5}
        """,
    )
    with pytest.raises(InvalidScenario) as caught:
        load_scenario(path)
    assert caught.value.message == (
        f"{path}, line 3, field injectors.0.name: unknown injector 'no-such-injector'; "
        "known injectors: client, network, node, protocol"
    )


class _FakeInjector:
    """Stands in for a registered injector factory: only its parameter model matters here."""

    name: ClassVar[str] = "fake"
    kind: ClassVar[str] = "client"

    class Params(BaseModel):
        model_config = {"extra": "forbid"}
        rate: float = Field(0.1, ge=0, le=1)


@pytest.fixture
def fake_injector(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(registry, "available", lambda: {"fake": _FakeInjector})
    yield


@pytest.mark.usefixtures("fake_injector")
def test_injector_params_are_checked_against_its_model(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        injectors:
          - name: fake
            params:
              rate: 3
              rat: 1
        """,
    )
    assert problem(path).splitlines() == [
        f"{path}, line 4, field injectors.0.params.rate: "
        "Input should be less than or equal to 1 (got 3)",
        f"{path}, line 5, field injectors.0.params.rat: unknown field 'rat'; did you mean 'rate'?",
    ]


@pytest.mark.usefixtures("fake_injector")
def test_valid_injector_params_load(tmp_path: Path) -> None:
    path = write(tmp_path, "injectors:\n  - name: fake\n    params: {rate: 0.3}\n")
    assert load_scenario(path).injectors[0].params == {"rate": 0.3}


# --- dumping -------------------------------------------------------------------------------------


def test_dump_loads_back_to_the_same_scenario(tmp_path: Path) -> None:
    original = load_scenario(DATA / "full.yaml")
    again = load_scenario(write(tmp_path, dump_scenario(original), "again.yaml"))
    assert again == original


def _field_names(model: type[BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def test_dump_writes_every_field_with_its_default() -> None:
    dumped = yaml.safe_load(dump_scenario(load_scenario(DATA / "minimal.yaml")))
    assert set(dumped) == _field_names(Scenario)
    for section, info in Scenario.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            assert set(dumped[info.alias or section]) == _field_names(annotation), section


# --- the `scenarios` command ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli() -> typer.Typer:
    """The real CLI; a local app with only `scenarios` if the other commands are mid-rewrite."""
    try:
        from astrachaos.cli import _register, app

        if not any(group.name == "scenarios" for group in app.registered_groups):
            _register()
        return app
    except Exception:  # another engineer's command module may not import right now
        from astrachaos.cli import scenarios

        local = typer.Typer()
        local.add_typer(scenarios.app, name="scenarios")
        return local


def invoke(cli: typer.Typer, *args: str) -> Any:
    return CliRunner().invoke(cli, ["scenarios", *args])


def test_validate_reports_each_file_and_exits_0_when_all_are_valid(cli: typer.Typer) -> None:
    result = invoke(cli, "validate", str(DATA / "full.yaml"), str(DATA / "minimal.yaml"))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"OK {DATA / 'full.yaml'} (full-example)",
        f"OK {DATA / 'minimal.yaml'} (minimal)",
    ]


def test_validate_checks_every_file_and_exits_3_if_any_is_invalid(
    cli: typer.Typer, tmp_path: Path
) -> None:
    bad = write(tmp_path, "workload:\n  writers: 0\n", "bad.yaml")
    missing = tmp_path / "no.yaml"
    result = invoke(cli, "validate", str(bad), str(DATA / "minimal.yaml"), str(missing))
    assert result.exit_code == 3
    assert f"OK {DATA / 'minimal.yaml'} (minimal)" in result.stdout
    assert f"{bad}, line 2, field workload.writers" in result.stderr
    assert f"{missing}: no such file" in result.stderr


def test_show_prints_every_default_and_applies_overrides(cli: typer.Typer) -> None:
    result = invoke(cli, "show", str(DATA / "minimal.yaml"), "--set", "workload.records=5")
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)
    expected = Scenario.model_validate(
        {"name": "minimal", "description": shown["description"], "workload": {"records": 5}}
    )
    assert shown == yaml.safe_load(dump_scenario(expected))


def test_show_finds_a_scenario_by_name(cli: typer.Typer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASTRACHAOS_SCENARIOS_DIR", str(DATA))
    result = invoke(cli, "show", "full")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout)["name"] == "full-example"


def test_show_of_an_invalid_scenario_raises_invalid_scenario(
    cli: typer.Typer, tmp_path: Path
) -> None:
    result = invoke(cli, "show", str(DATA / "minimal.yaml"), "--set", "workload.recrods=5")
    assert isinstance(result.exception, InvalidScenario)  # main() turns it into exit code 3


def test_list_shows_a_row_per_scenario(cli: typer.Typer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASTRACHAOS_SCENARIOS_DIR", str(DATA))
    result = invoke(cli, "list")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("│ ")]
    [full] = [row for row in rows if row.split("│")[1].strip() == "full"]
    assert "fire-and-forget" in full and "4\N{MULTIPLICATION SIGN}20000" in full
    assert any(row.split("│")[1].strip() == "queue-overflow" for row in rows)
    assert any(row.split("│")[1].strip() == "minimal" for row in rows)


@pytest.mark.parametrize("text", ["target.profile: !!int \n", "workload:\n  rate: !!float x\n"])
def test_a_value_that_contradicts_its_explicit_tag_is_invalid_not_a_crash(tmp_path: Path, text: str) -> None:
    path = tmp_path / "tagged.yaml"
    path.write_text(text)
    with pytest.raises(InvalidScenario) as caught:
        load_scenario(path)
    assert str(path) in caught.value.message


# --- driver options: validated at load, before any run directory exists ----------------------


def test_misspelled_driver_option_names_file_line_and_the_close_option(tmp_path: Path) -> None:
    path = write(tmp_path, "target:\n  driver:\n    consistency: QUORUM\n    max_queue_szie: 10\n")
    assert problem(path) == (
        f"{path}, line 4, field target.driver.max_queue_szie: "
        "unknown field 'max_queue_szie'; did you mean 'max_queue_size'?"
    )


def test_driver_option_values_and_the_secondary_side_are_checked_at_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        target:
          driver: {consistency: QUORUM, retry.max_attempts: 0}
          secondary:
            driver:
              request_timeout_ms: -5
        """,
    )
    lines = problem(path).splitlines()
    assert lines[0].startswith(f"{path}, line 2, field target.driver.retry.max_attempts: ")
    assert lines[1].startswith(f"{path}, line 5, field target.secondary.driver.request_timeout_ms: ")
    assert "(got -5)" in lines[1]


def test_valid_driver_options_load_as_written(tmp_path: Path) -> None:
    path = write(tmp_path, "target:\n  driver: {max_queue_size: 10, driver.consistency: ONE}\n")
    driver = load_scenario(path).target.driver
    assert driver.as_options() == {"max_queue_size": 10, "consistency": "ONE"}


def test_driver_options_are_checked_over_the_profiles_own_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "rated.yaml").write_text("driver:\n  max_requests_per_second: 100\n")
    monkeypatch.setenv("ASTRACHAOS_CONFIG_DIR", str(configs))
    # Wrong alone, right over the profile (which gives the rate): accepted.
    fine = write(tmp_path, "target:\n  profile: rated\n  driver: {throttler: rate}\n", "a.yaml")
    assert load_scenario(fine, with_profiles=True).target.driver.throttler == "rate"
    # Right alone, wrong over the profile (its rate throttler loses its rate): refused at load.
    path = write(
        tmp_path, "target:\n  profile: rated\n  driver:\n    max_requests_per_second: null\n"
    )
    assert load_scenario(path).target.driver.max_requests_per_second is None
    with pytest.raises(InvalidScenario) as caught:
        load_scenario(path, with_profiles=True)
    assert caught.value.message.startswith(f"{path}, line 3, field target.driver: ")
    assert "needs max_requests_per_second" in caught.value.message
    assert caught.value.message.endswith("(over the driver options of profile 'rated')")


def test_a_scenario_dump_keeps_only_the_driver_options_it_set(tmp_path: Path) -> None:
    path = write(tmp_path, "target:\n  driver: {retry.max_attempts: 2, consistency: ONE}\n")
    dumped = dump_scenario(load_scenario(path))
    assert "  driver:\n    consistency: ONE\n    retry:\n      max_attempts: 2\n  secondary" in dumped
    again = write(tmp_path, dumped, "again.yaml")
    assert load_scenario(again).target.driver == load_scenario(path).target.driver


# --- other YAML files share the formatter: suites ----------------------------------------------


def test_a_suite_problem_names_file_line_field_and_the_close_field(tmp_path: Path) -> None:
    from astrachaos.run.suite import load_suite

    path = write(tmp_path, "runs:\n  - {name: a, scenario: x}\n  - name: b\n    scenarioo: y\n")
    with pytest.raises(InvalidScenario) as caught:
        load_suite(path)
    assert caught.value.message.splitlines() == [
        f"{path}, line 3, field runs.1.scenario: Field required",
        f"{path}, line 4, field runs.1.scenarioo: unknown field 'scenarioo'; did you mean 'scenario'?",
    ]
    with pytest.raises(InvalidScenario, match=r"line 2, column 1"):
        load_suite(write(tmp_path, "runs: [\n"))
