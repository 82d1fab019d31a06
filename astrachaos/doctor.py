"""`doctor`: is this machine ready for astrachaos? Each check is data with a fix for a problem."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from astrachaos.errors import AstrachaosError, ExitCode

MIN_PYTHON = (3, 11)


class CheckStatus(StrEnum):
    """How a check came out; only FAIL makes doctor exit non-zero."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table."""

    name: str
    status: CheckStatus
    detail: str
    fix: str = ""


ProfileProbe = Callable[[str], str]
"""Connects with a named profile and describes what answered; raises AstrachaosError if not."""


def check_python(version: tuple[int, ...] = tuple(sys.version_info[:3])) -> Check:
    """Python 3.11 or newer."""
    shown = ".".join(map(str, version))
    if version[:2] >= MIN_PYTHON:
        return Check("python", CheckStatus.OK, f"Python {shown}")
    return Check(
        "python", CheckStatus.FAIL, f"Python {shown} is too old", "use Python 3.11 or newer"
    )


def check_java(needed: bool = True, env: Mapping[str, str] | None = None) -> Check:
    """A JDK 17 (or 11) for the local cluster."""
    from astrachaos.local.java import find_java_home

    try:
        home = find_java_home(env)
    except AstrachaosError as error:
        status = CheckStatus.FAIL if needed else CheckStatus.WARN
        return Check("java 17", status, error.message, _fix(error, "install a JDK 17"))
    return Check("java 17", CheckStatus.OK, f"Java {home.major} at {home.path}")


def check_maven(needed: bool = True, which: Callable[[str], str | None] = shutil.which) -> Check:
    """Maven, which fetches Cassandra's jars once."""
    mvn = which("mvn")
    if mvn is not None:
        return Check("maven", CheckStatus.OK, mvn)
    return Check(
        "maven",
        CheckStatus.FAIL if needed else CheckStatus.WARN,
        "mvn not found on PATH (needed once, to download Cassandra's jars)",
        "install Maven (Debian/Ubuntu: apt-get install maven)",
    )


def check_jar_cache(version: str) -> Check:
    """Whether Cassandra's jars are already cached (else the first `local up` downloads them)."""
    from astrachaos.local.layout import jar_dir
    from astrachaos.local.provision import cached_jars

    lib = cached_jars(version)
    if lib is not None:
        jars = sum(1 for _ in lib.glob("*.jar"))
        return Check("cassandra jars", CheckStatus.OK, f"{version}: {jars} jars in {lib}")
    return Check(
        "cassandra jars",
        CheckStatus.WARN,
        f"{version} not cached yet ({jar_dir(version)})",
        "`astrachaos local up` downloads them from Maven Central (about 70 MB, once)",
    )


def probe_profile(name: str) -> str:
    """Connect with a profile and ask the database its version."""
    from astrachaos.config.settings import load_profile
    from astrachaos.driver.session import connect

    profile = load_profile(name).profile
    with connect(profile) as connection:
        row = connection.session.execute("SELECT release_version FROM system.local").one()
    where = "Astra DB" if profile.kind == "astra" else ", ".join(profile.contact_points)
    return f"Cassandra {row.release_version} at {where} port {profile.port}"


def profile_kind(name: str) -> str | None:
    """The kind of a profile (local, cassandra, astra), or None if it does not load."""
    from astrachaos.config.settings import load_profile

    try:
        return str(load_profile(name).profile.kind)
    except AstrachaosError:
        return None


def check_profile(name: str, kind: str | None, probe: ProfileProbe = probe_profile) -> Check:
    """Can astrachaos reach the profile's database?"""
    label = f"profile {name}"
    try:
        detail = probe(name)
    except AstrachaosError as error:
        fix = "`astrachaos local up`" if kind == "local" else _fix(error, "check the profile")
        return Check(label, CheckStatus.FAIL, error.message, fix)
    return Check(label, CheckStatus.OK, detail)


def run_doctor(
    profile: str = "local",
    version: str | None = None,
    probe: ProfileProbe = probe_profile,
) -> list[Check]:
    """Every check, in the order a person would fix them."""
    from astrachaos.local.spec import DEFAULT_VERSION

    kind = profile_kind(profile)
    needs_local = kind in ("local", None)
    return [
        check_python(),
        check_java(needed=needs_local),
        check_maven(needed=needs_local),
        check_jar_cache(version or DEFAULT_VERSION),
        check_profile(profile, kind, probe),
    ]


def exit_code(checks: list[Check]) -> ExitCode:
    """ENVIRONMENT if any check failed, else OK."""
    failed = any(check.status is CheckStatus.FAIL for check in checks)
    return ExitCode.ENVIRONMENT if failed else ExitCode.OK


def _fix(error: AstrachaosError, fallback: str) -> str:
    return error.hint or fallback
