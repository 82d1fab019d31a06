"""Profiles: defaults, precedence, where each value came from, redaction, and clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from astrachaos import cli
from astrachaos.config.driver_options import (
    DriverOptions,
    RetryOptions,
    SpeculativeExecutionOptions,
)
from astrachaos.config.settings import Profile, load_profile
from astrachaos.errors import InvalidScenario
from astrachaos.scenario import (
    DriverOverrides,
    RetryOverrides,
    SpeculativeExecutionOverrides,
)

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TOKEN = "AstraCS:very-secret-token-value"
PASSWORD = "hunter2-password"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real ASTRACHAOS_* variable, ./configs or ./.env leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("ASTRACHAOS_", "ASTRA_DB_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def config_show(*args: str) -> str:
    """Run `astrachaos config show ARGS` through the root app; return what it printed."""
    if not cli.app.registered_groups:
        cli._register()
    result = CliRunner().invoke(cli.app, ["config", "show", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_driver_defaults_are_the_seeds() -> None:
    driver = DriverOptions()
    assert driver.request_timeout_ms == 15000
    assert driver.consistency == "LOCAL_QUORUM"
    assert driver.default_idempotence is True
    assert driver.max_local_connections_per_host == 12
    assert driver.max_requests_per_connection == 2048
    assert driver.max_queue_size == 25000
    assert driver.max_concurrent_requests == 15000
    assert driver.throttler == "concurrency"


def test_every_setting_has_a_description() -> None:

    from astrachaos.config.driver_options import RetryOptions, SpeculativeExecutionOptions
    from astrachaos.config.settings import SslOptions

    models: list[type[BaseModel]] = [
        Profile,
        DriverOptions,
        RetryOptions,
        SpeculativeExecutionOptions,
        SslOptions,
    ]
    for model in models:
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"


def test_not_applied_options_say_so() -> None:
    for name in ("max_local_connections_per_host",):
        description = DriverOptions.model_fields[name].description or ""
        assert "not applied" in description


def test_builtin_profiles_work_outside_the_repo() -> None:
    local = load_profile("local")
    assert local.profile.kind == "local"
    assert local.profile.contact_points == ["127.0.0.1"]
    assert local.source_of("kind") == "built-in local"
    assert load_profile("cassandra").profile.port == 9042


@pytest.mark.parametrize("name", ["local", "local3", "cassandra", "astra"])
def test_repo_configs_match_the_builtins(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASTRA_DB_APPLICATION_TOKEN", TOKEN)
    monkeypatch.setenv("ASTRACHAOS_SECURE_CONNECT_BUNDLE", "bundle.zip")
    from_repo = load_profile(name, config_dir=REPO_CONFIGS).profile
    assert from_repo == load_profile(name).profile


def test_config_dir_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write(tmp_path / "elsewhere", "lab.yaml", "contact_points: [10.1.1.1]\n")
    monkeypatch.setenv("ASTRACHAOS_CONFIG_DIR", str(tmp_path / "elsewhere"))
    assert load_profile("lab").profile.contact_points == ["10.1.1.1"]


def test_precedence_is_default_then_yaml_then_dotenv_then_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write(
        tmp_path / "configs",
        "lab.yaml",
        "kind: cassandra\nport: 9100\nkeyspace: from_yaml\ndriver:\n  max_queue_size: 1\n"
        "  consistency: ONE\n",
    )
    write(
        tmp_path,
        ".env",
        "ASTRACHAOS_KEYSPACE=from_dotenv\nASTRACHAOS_DRIVER__MAX_QUEUE_SIZE=2\n",
    )
    monkeypatch.setenv("ASTRACHAOS_DRIVER__MAX_QUEUE_SIZE", "3")
    resolved = load_profile("lab")
    profile = resolved.profile
    assert profile.local_dc == "datacenter1"  # default
    assert profile.port == 9100  # yaml
    assert profile.keyspace == "from_dotenv"  # .env over yaml
    assert profile.driver.max_queue_size == 3  # env over .env over yaml
    assert resolved.source_of("local_dc") == "default"
    assert resolved.source_of("port") == "configs/lab.yaml, line 2"
    assert resolved.source_of("keyspace") == ".env ASTRACHAOS_KEYSPACE"
    assert resolved.source_of("driver.max_queue_size") == "env ASTRACHAOS_DRIVER__MAX_QUEUE_SIZE"
    assert resolved.source_of("driver.consistency") == "configs/lab.yaml, line 6"


def test_env_sets_nested_options_and_comma_separated_contact_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASTRACHAOS_CONTACT_POINTS", "10.0.0.1, 10.0.0.2")
    monkeypatch.setenv("ASTRACHAOS_DRIVER__REQUEST_TIMEOUT_MS", "5000")
    monkeypatch.setenv("ASTRACHAOS_DRIVER__RETRY__MAX_ATTEMPTS", "7")
    profile = load_profile("local").profile
    assert profile.contact_points == ["10.0.0.1", "10.0.0.2"]
    assert profile.driver.request_timeout_ms == 5000
    assert profile.driver.retry.max_attempts == 7


def test_every_resolved_setting_is_listed_flat_with_a_source() -> None:
    keys = {s.key: s for s in load_profile("local").settings()}
    assert "driver.request_timeout_ms" in keys
    assert "driver.retry.max_attempts" in keys
    assert keys["driver.max_local_connections_per_host"].applied is False
    assert keys["driver.max_requests_per_connection"].applied is True
    assert keys["driver.request_timeout_ms"].source == "default"


def test_astra_token_comes_from_the_astra_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASTRA_DB_APPLICATION_TOKEN", TOKEN)
    monkeypatch.setenv("ASTRACHAOS_SECURE_CONNECT_BUNDLE", "bundle.zip")
    resolved = load_profile("astra")
    assert resolved.profile.token is not None
    assert resolved.profile.token.get_secret_value() == TOKEN
    assert resolved.profile.contact_points == []
    assert resolved.source_of("token") == "env ASTRA_DB_APPLICATION_TOKEN"


def test_variables_for_another_kind_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    # A dual write loads an astra and a cassandra profile under the same environment.
    monkeypatch.setenv("ASTRA_DB_APPLICATION_TOKEN", TOKEN)
    monkeypatch.setenv("ASTRACHAOS_SECURE_CONNECT_BUNDLE", "bundle.zip")
    monkeypatch.setenv("ASTRACHAOS_CONTACT_POINTS", "10.0.0.9")
    local = load_profile("local")
    assert local.profile.token is None
    assert local.profile.secure_connect_bundle is None
    assert local.source_of("token") == "default"
    assert load_profile("astra").profile.contact_points == []


def test_astra_settings_in_a_cassandra_file_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "configs", "lab.yaml", "kind: cassandra\nsecure_connect_bundle: b.zip\n")
    with pytest.raises(InvalidScenario, match="secure_connect_bundle needs kind: astra"):
        load_profile("lab")


def test_secrets_never_appear_in_repr_str_or_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASTRA_DB_APPLICATION_TOKEN", TOKEN)
    monkeypatch.setenv("ASTRACHAOS_SECURE_CONNECT_BUNDLE", "bundle.zip")
    monkeypatch.setenv("ASTRACHAOS_USERNAME", "app")
    monkeypatch.setenv("ASTRACHAOS_PASSWORD", PASSWORD)
    resolved = load_profile("astra")
    shown = [
        repr(resolved),
        str(resolved.profile),
        repr(resolved.profile),
        str(resolved.profile.redacted()),
        str(resolved.settings()),
    ]
    for text in shown:
        assert TOKEN not in text
        assert PASSWORD not in text
    assert resolved.profile.redacted()["token"] == "********"
    assert resolved.profile.redacted()["password"] == "********"


def test_config_show_never_prints_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASTRA_DB_APPLICATION_TOKEN", TOKEN)
    monkeypatch.setenv("ASTRACHAOS_SECURE_CONNECT_BUNDLE", "bundle.zip")
    output = config_show("--profile", "astra")
    assert TOKEN not in output
    assert "AstraCS" not in output
    assert "********" in output
    assert "ASTRA_DB_APPLICATION_TOKEN" in output  # the source is shown, not the value


def test_config_show_lists_flattened_driver_options_and_sources(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASTRACHAOS_DRIVER__REQUEST_TIMEOUT_MS", "5000")
    output = config_show("--profile", "local")
    line = next(x for x in output.splitlines() if "driver.request_timeout_ms" in x)
    assert "5000" in line
    assert "env ASTRACHAOS_DRIVER__REQUEST_TIMEOUT_MS" in line


def test_invalid_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "configs", "lab.yaml", "kind: cassandra\nport: 9042\n  oops: [\n")
    with pytest.raises(InvalidScenario) as caught:
        load_profile("lab")
    assert "configs/lab.yaml, line 3" in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_unknown_field_names_file_line_and_field_and_suggests(tmp_path: Path) -> None:
    write(tmp_path / "configs", "lab.yaml", "kind: cassandra\ndriver:\n  request_timout_ms: 5\n")
    with pytest.raises(InvalidScenario) as caught:
        load_profile("lab")
    message = str(caught.value)
    # The scenario loader's formatter: origin, field, problem, the close name.
    assert "configs/lab.yaml, line 3, field driver.request_timout_ms: unknown field" in message
    assert "did you mean 'request_timeout_ms'?" in message


def test_wrong_type_names_file_line_and_field(tmp_path: Path) -> None:
    write(tmp_path / "configs", "lab.yaml", "kind: cassandra\nport: lots\n")
    with pytest.raises(InvalidScenario) as caught:
        load_profile("lab")
    assert "configs/lab.yaml, line 2, field port: " in str(caught.value)
    assert "(got 'lots')" in str(caught.value)


def test_unknown_consistency_level_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "configs", "lab.yaml", "driver:\n  consistency: MOSTLY\n")
    with pytest.raises(InvalidScenario, match=r"lab.yaml, line 2, field driver.consistency: unknown"):
        load_profile("lab")


def test_a_key_set_twice_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "configs", "lab.yaml", "port: 1\nport: 2\n")
    with pytest.raises(
        InvalidScenario, match=r"lab.yaml, line 2, field port: duplicate key 'port' \(first on line 1\)"
    ):
        load_profile("lab")


def test_a_profile_must_be_a_mapping(tmp_path: Path) -> None:
    write(tmp_path / "configs", "lab.yaml", "- a\n- b\n")
    with pytest.raises(InvalidScenario, match="must be a mapping"):
        load_profile("lab")


def test_wrong_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASTRACHAOS_DRIVER__MAX_QUEUE_SIZE", "many")
    with pytest.raises(InvalidScenario, match="env ASTRACHAOS_DRIVER__MAX_QUEUE_SIZE"):
        load_profile("local")


def test_unknown_profile_lists_the_builtins() -> None:
    with pytest.raises(InvalidScenario) as caught:
        load_profile("nowhere")
    assert "nowhere" in str(caught.value)
    assert caught.value.hint is not None
    assert "local" in caught.value.hint


def test_astra_needs_a_bundle_and_a_token() -> None:
    with pytest.raises(InvalidScenario) as caught:
        load_profile("astra")
    assert "secure_connect_bundle" in str(caught.value)
    assert "ASTRA_DB_APPLICATION_TOKEN" in str(caught.value)


def test_astra_cannot_be_combined_with_contact_points(tmp_path: Path) -> None:
    write(
        tmp_path / "configs",
        "cloud.yaml",
        "kind: astra\nsecure_connect_bundle: b.zip\ntoken: AstraCS:x\ncontact_points: [10.0.0.1]\n",
    )
    with pytest.raises(InvalidScenario, match="contact_points"):
        load_profile("cloud")


def test_a_wrong_token_type_does_not_echo_the_value(tmp_path: Path) -> None:
    write(
        tmp_path / "configs",
        "cloud.yaml",
        "kind: astra\nsecure_connect_bundle: b.zip\ntoken: [AstraCS-not-a-string]\n",
    )
    with pytest.raises(InvalidScenario) as caught:
        load_profile("cloud")
    assert "cloud.yaml, line 3, field token: " in str(caught.value)
    assert "AstraCS-not-a-string" not in str(caught.value)


def test_driver_overrides_accept_nested_and_dotted_keys() -> None:
    profile = load_profile("local").profile
    changed = profile.with_driver_overrides(
        DriverOverrides.model_validate(
            {"retry": {"max_attempts": 2}, "driver.max_queue_size": 100, "consistency": "one"}
        )
    )
    assert changed.driver.retry.max_attempts == 2
    assert changed.driver.retry.base_delay_ms == profile.driver.retry.base_delay_ms
    assert changed.driver.max_queue_size == 100
    assert changed.driver.consistency == "ONE"
    assert profile.driver.max_queue_size == 25000  # the original is untouched


def test_driver_overrides_are_validated() -> None:
    profile = load_profile("local").profile
    with pytest.raises(InvalidScenario, match=r"field driver\.max_queue_size: .*greater than"):
        profile.with_driver_overrides(DriverOverrides(max_queue_size=-1))


def test_the_overrides_model_names_every_driver_option() -> None:
    def names(model: type[BaseModel]) -> dict[str, object]:
        nested = {"retry": RetryOptions, "speculative_execution": SpeculativeExecutionOptions}
        return {name: names(nested[name]) if name in nested else None for name in model.model_fields}

    overrides = {"retry": RetryOverrides, "speculative_execution": SpeculativeExecutionOverrides}

    def override_names(model: type[BaseModel]) -> dict[str, object]:
        return {
            name: override_names(overrides[name]) if name in overrides else None
            for name in model.model_fields
        }

    assert override_names(DriverOverrides) == names(DriverOptions)


def test_a_rate_selects_the_rate_throttler_unless_one_is_chosen() -> None:
    assert DriverOptions(max_requests_per_second=100).throttler == "rate"
    explicit = DriverOptions(max_requests_per_second=100, throttler="none")
    assert explicit.throttler == "none"
    profile = load_profile("local").profile.with_driver_overrides(DriverOverrides(max_requests_per_second=50))
    assert profile.driver.throttler == "rate"
    with pytest.raises(ValueError, match="needs max_requests_per_second"):
        DriverOptions(throttler="rate")
