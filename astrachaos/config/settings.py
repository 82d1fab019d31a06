"""Connection profiles: the model, loading (YAML, .env, environment) and where each value came from."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from astrachaos.config.catalog import profiles_dir
from astrachaos.config.driver_options import NOT_APPLIED_KEYS, DriverOptions
from astrachaos.config.problems import describe_problems
from astrachaos.config.yamlfile import origin_at, parse, read_text
from astrachaos.errors import InvalidScenario
from astrachaos.scenario import DriverOverrides

ENV_PREFIX = "ASTRACHAOS_"
ASTRA_TOKEN_ENV = "ASTRA_DB_APPLICATION_TOKEN"
CONFIG_DIR_ENV = "ASTRACHAOS_CONFIG_DIR"
SECRET_FIELDS = frozenset({"password", "token"})
ASTRA_ONLY = frozenset({"secure_connect_bundle", "token"})
NOT_FOR_ASTRA = frozenset({"contact_points", "ssl"})

ProfileKind = Literal["local", "cassandra", "astra"]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SslOptions(_Options):
    """TLS to the nodes (not for Astra: the bundle carries its own)."""

    ca_file: Path | None = Field(None, description="CA certificate (PEM) to verify nodes.")
    cert_file: Path | None = Field(None, description="Client certificate (PEM), mutual TLS.")
    key_file: Path | None = Field(None, description="Client private key (PEM), mutual TLS.")
    verify: bool = Field(True, description="Verify the node certificate and host name.")


class Profile(BaseSettings):
    """How to reach one database; built by `load_profile`, or directly (then no env is read)."""

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
    )

    name: str = Field(..., description="Profile name (the config file's stem).")
    kind: ProfileKind = Field("cassandra", description="local, cassandra or astra.")
    contact_points: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1"],
        description="Node addresses (comma-separated in the environment); none for astra.",
    )
    port: int = Field(9042, ge=1, le=65535, description="Native transport port.")
    local_dc: str | None = Field(
        "datacenter1",
        description="Local datacenter for load balancing; none: the first node's (astra: none).",
    )
    keyspace: str = Field("astrachaos", description="Keyspace astrachaos writes into.")
    username: str | None = Field(None, description="PlainText authentication user.")
    password: SecretStr | None = Field(None, description="PlainText authentication password.")
    ssl: SslOptions | None = Field(None, description="TLS options; none: plain TCP.")
    secure_connect_bundle: Path | None = Field(None, description="Astra secure connect bundle.")
    token: SecretStr | None = Field(
        None, description="Astra application token (ASTRA_DB_APPLICATION_TOKEN); astra only."
    )
    driver: DriverOptions = Field(default_factory=DriverOptions, description="Driver options.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment is layered by load_profile, which records where each value came from.
        return (init_settings,)

    @field_validator("contact_points", mode="before")
    @classmethod
    def _split_contact_points(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return yaml.safe_load(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="before")
    @classmethod
    def _astra_defaults(cls, data: Any) -> Any:
        # The bundle names the hosts and the local DC: nothing to default for astra.
        if isinstance(data, dict) and data.get("kind") == "astra":
            data = {"contact_points": [], "local_dc": None, **data}
        return data

    @model_validator(mode="after")
    def _cloud_is_exclusive(self) -> Self:
        problems = []
        if self.kind == "astra":
            needs = {
                "secure_connect_bundle": f"a bundle zip path, or {ENV_PREFIX}SECURE_CONNECT_BUNDLE",
                "token": f"{ASTRA_TOKEN_ENV} or {ENV_PREFIX}TOKEN",
            }
            missing = [f"{f} ({why})" for f, why in needs.items() if getattr(self, f) is None]
            if missing:
                problems.append(f"kind astra needs {' and '.join(missing)}")
            if self.contact_points or self.ssl is not None:
                problems.append(
                    "kind astra cannot be combined with contact_points or ssl: the secure "
                    "connect bundle names the hosts and carries the certificates"
                )
        elif self.secure_connect_bundle is not None:
            problems.append("secure_connect_bundle needs kind: astra")
        elif not self.contact_points:
            problems.append("contact_points is empty")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def driver_options_with(self, overrides: DriverOverrides) -> dict[str, Any]:
        """The profile's driver options as written, with what a scenario set laid over them."""
        merged = self.driver.model_dump(exclude_unset=True)
        _overlay(merged, overrides.as_options(), lambda _p: "", {}, ())
        return merged

    def with_driver_overrides(self, overrides: DriverOverrides) -> Profile:
        """A copy with the driver options a scenario set replaced (the loader checked them)."""
        try:
            driver = DriverOptions.model_validate(self.driver_options_with(overrides))
        except ValidationError as error:
            where = f"profile {self.name!r} with the scenario's driver options"
            problems = describe_problems(error, DriverOptions, ("driver",), lambda loc: where)
            raise InvalidScenario(problems) from None
        return self.model_copy(update={"driver": driver})

    def redacted(self) -> dict[str, Any]:
        """Every setting as JSON-ready data, secrets replaced by `********` (for reports)."""
        data = self.model_dump(mode="json")
        for name in SECRET_FIELDS:
            data[name] = None if getattr(self, name) is None else "********"
        return data


@dataclass(frozen=True)
class ResolvedSetting:
    """One flattened setting as `config show` lists it; `value` is already redacted."""

    key: str
    value: Any
    source: str
    applied: bool = True


@dataclass(frozen=True)
class ResolvedProfile:
    """A validated profile and, for each flattened setting, where its value came from."""

    profile: Profile
    sources: Mapping[str, str]

    def source_of(self, key: str) -> str:
        """Where a flattened setting (`driver.request_timeout_ms`) got its value."""
        return self.sources.get(key, "default")

    def settings(self) -> list[ResolvedSetting]:
        """Every setting, flattened, secrets redacted, in model order."""
        return [
            ResolvedSetting(key, _redact(key, value), self.source_of(key), key not in NOT_APPLIED_KEYS)
            for key, value in _leaves(self.profile.model_dump(), ())
        ]



Sources = dict[tuple[str, ...], str]


def config_dirs(config_dir: Path | None = None) -> list[Path]:
    """Where the user's profiles are looked for, in order (the shipped ones come after these)."""
    if config_dir is not None:
        return [config_dir]
    from_env = os.environ.get(CONFIG_DIR_ENV)
    return [Path(from_env)] if from_env else [Path("configs")]


def load_profile(name: str, config_dir: Path | None = None, env_file: Path | None = None) -> ResolvedProfile:
    """Resolve a profile: built-in or YAML < `.env` < environment; invalid → InvalidScenario."""
    merged: dict[str, Any] = {"name": name}
    sources: Sources = {}
    where = _overlay_file(name, config_dir, merged, sources)
    dotenv = Path(".env") if env_file is None else env_file
    from_env: set[str] = set()
    if dotenv.is_file():
        from_env |= _overlay_env(merged, sources, _DotEnvLayer(dotenv), f"{dotenv}")
    from_env |= _overlay_env(merged, sources, _EnvLayer(), "env")
    # Variables are global, and a dual write loads an astra and a cassandra profile together:
    # a variable meant for the other kind is not this profile's mistake.
    for key in from_env & (NOT_FOR_ASTRA if merged.get("kind") == "astra" else ASTRA_ONLY):
        merged.pop(key, None)
        for path in [p for p in sources if p[0] == key]:
            del sources[path]
    try:
        profile = Profile.model_validate(merged)
    except ValidationError as error:
        raise InvalidScenario(_validation_message(name, where, error, sources)) from None
    return ResolvedProfile(profile, {".".join(p): s for p, s in sources.items()})


def _overlay_file(name: str, config_dir: Path | None, merged: dict[str, Any], sources: Sources) -> str:
    dirs = config_dirs(config_dir)
    path = next((d / f"{name}.yaml" for d in dirs if (d / f"{name}.yaml").is_file()), None)
    if path is not None:
        source = str(path)
        data, locations = parse(read_text(path, "profile"), source, "profile", empty_ok=True)
        sources[("name",)] = source
        _overlay(merged, data, lambda p: str(origin_at(locations, p, source)), sources, ())
        return str(path)
    # Used when neither $ASTRACHAOS_CONFIG_DIR nor ./configs has the file: the tool works anywhere.
    shipped = profiles_dir() / f"{name}.yaml"
    if shipped.is_file():
        data, _ = parse(read_text(shipped, "profile"), str(shipped), "profile", empty_ok=True)
        sources[("name",)] = f"built-in {name}"
        _overlay(merged, data, lambda _p: f"built-in {name}", sources, ())
        return f"built-in profile {name} ({shipped})"
    searched = ", ".join(str(d) for d in dirs)
    raise InvalidScenario(
        f"unknown profile {name!r}: no {name}.yaml in {searched}",
        hint=f"built-in profiles: {', '.join(shipped_profiles())}; or set {CONFIG_DIR_ENV}",
    )


def shipped_profiles() -> list[str]:
    """The names of the profiles the package ships."""
    return sorted(path.stem for path in profiles_dir().glob("*.yaml"))


class _EnvLayer(EnvSettingsSource):
    """ASTRACHAOS_* from the process environment, parsed by pydantic-settings."""

    def __init__(self) -> None:
        super().__init__(Profile)


class _DotEnvLayer(DotEnvSettingsSource):
    """ASTRACHAOS_* (and the Astra token) from a `.env` file."""

    def __init__(self, env_file: Path) -> None:
        super().__init__(Profile, env_file=env_file, dotenv_filtering="only_existing")


def _overlay_env(merged: dict[str, Any], sources: Sources, layer: EnvSettingsSource, label: str) -> set[str]:
    """Overlay one environment layer; return the top-level settings it set."""
    names = {name.lower() for name in layer.env_vars}
    token = layer.env_vars.get(ASTRA_TOKEN_ENV.lower())
    if token:
        _overlay(merged, {"token": token}, lambda _p: f"{label} {ASTRA_TOKEN_ENV}", sources, ())
    try:
        parsed = layer()
    except SettingsError as error:
        raise InvalidScenario(f"{label}: cannot parse an {ENV_PREFIX}* variable: {error}") from None
    data = {k: v for k, v in parsed.items() if k in Profile.model_fields}
    _overlay(merged, data, lambda p: f"{label} {_env_name(names, p)}", sources, ())
    return set(data) | ({"token"} if token else set())


def _env_name(names: set[str], path: tuple[str, ...]) -> str:
    # A nested value may come from its own variable or from a JSON object one level up.
    for end in range(len(path), 0, -1):
        candidate = ENV_PREFIX + "__".join(path[:end])
        if candidate.lower() in names:
            return candidate.upper()
    return (ENV_PREFIX + "__".join(path)).upper()


def _overlay(
    base: dict[str, Any],
    layer: Mapping[str, Any],
    label: Callable[[tuple[str, ...]], str],
    sources: Sources,
    prefix: tuple[str, ...],
) -> None:
    """Deep-merge `layer` into `base`, recording `label(path)` for every leaf it sets."""
    for key, value in layer.items():
        path = (*prefix, key)
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _overlay(base[key], value, label, sources, path)
            continue
        for stale in [p for p in sources if p[: len(path)] == path]:
            del sources[stale]
        if isinstance(value, Mapping):
            base[key] = {}
            _overlay(base[key], value, label, sources, path)
        else:
            base[key] = value
            sources[path] = label(path)


def _leaves(data: Mapping[str, Any], prefix: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        if isinstance(value, Mapping):
            yield from _leaves(value, (*prefix, key))
        else:
            yield ".".join((*prefix, key)), value


def _redact(key: str, value: Any) -> Any:
    if key in SECRET_FIELDS:
        return "(not set)" if value is None else "********"
    return value


def _validation_message(name: str, where: str, error: ValidationError, sources: Sources) -> str:
    def origin(loc: tuple[str | int, ...]) -> str:
        return _origin_of(tuple(str(part) for part in loc), sources) or where

    problems = describe_problems(error, Profile, (), origin, SECRET_FIELDS)
    return f"profile {name!r} is invalid:\n{problems}"


def _origin_of(path: tuple[str, ...], sources: Sources) -> str | None:
    for end in range(len(path), 0, -1):
        if path[:end] in sources:
            return sources[path[:end]]
    return None
