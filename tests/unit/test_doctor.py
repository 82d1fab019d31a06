"""`doctor`: every check is data, each problem comes with a fix, exit 4 only on a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from astrachaos.doctor import (
    Check,
    CheckStatus,
    check_jar_cache,
    check_java,
    check_maven,
    check_profile,
    check_python,
    exit_code,
    run_doctor,
)
from astrachaos.errors import EnvironmentProblem, ExitCode


def test_python_311_passes_and_310_fails_with_a_fix() -> None:
    assert check_python((3, 11, 7)).status is CheckStatus.OK
    old = check_python((3, 10, 12))
    assert old.status is CheckStatus.FAIL and "3.11" in old.fix


def test_missing_maven_fails_with_an_install_fix() -> None:
    check = check_maven(which=lambda _: None)
    assert check.status is CheckStatus.FAIL
    assert "apt-get install maven" in check.fix


def test_missing_maven_is_only_a_warning_when_no_local_cluster_is_needed() -> None:
    assert check_maven(needed=False, which=lambda _: None).status is CheckStatus.WARN


def test_java_check_reports_the_jdk_it_found() -> None:
    check = check_java(env={})
    assert check.status is CheckStatus.OK, check.detail
    assert "Java 17" in check.detail


def test_absent_jar_cache_is_a_warning_saying_up_downloads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASTRACHAOS_CACHE", str(tmp_path))
    check = check_jar_cache("5.0.9")
    assert check.status is CheckStatus.WARN
    assert "not cached" in check.detail and "local up" in check.fix


def test_present_jar_cache_names_the_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASTRACHAOS_CACHE", str(tmp_path))
    lib = tmp_path / "cassandra" / "5.0.9" / "lib"
    lib.mkdir(parents=True)
    (lib / "cassandra-all-5.0.9.jar").write_bytes(b"")
    check = check_jar_cache("5.0.9")
    assert check.status is CheckStatus.OK and "5.0.9: 1 jars" in check.detail


def test_unreachable_local_profile_fails_and_says_local_up() -> None:
    def refuse(name: str) -> str:
        raise EnvironmentProblem("cannot connect to 127.0.0.1 port 9042", hint="elsewhere")

    check = check_profile("local", "local", refuse)
    assert check.status is CheckStatus.FAIL
    assert "9042" in check.detail and "astrachaos local up" in check.fix


def test_unreachable_cassandra_profile_keeps_the_connection_hint() -> None:
    def refuse(name: str) -> str:
        raise EnvironmentProblem("cannot connect", hint="check contact_points")

    assert check_profile("prod", "cassandra", refuse).fix == "check contact_points"


def test_reachable_profile_passes_with_what_answered() -> None:
    check = check_profile("local", "local", lambda name: "Cassandra 5.0.9 at 127.0.0.1")
    assert check == Check("profile local", CheckStatus.OK, "Cassandra 5.0.9 at 127.0.0.1")


def test_doctor_runs_every_check_in_order() -> None:
    checks = run_doctor("local", probe=lambda name: "Cassandra 5.0.9")
    assert [c.name for c in checks] == [
        "python",
        "java 17",
        "maven",
        "cassandra jars",
        "profile local",
    ]
    assert all(isinstance(c, Check) for c in checks)


def test_exit_code_is_4_on_a_failure_and_0_with_only_warnings() -> None:
    ok = Check("a", CheckStatus.OK, "")
    warn = Check("b", CheckStatus.WARN, "", "fix")
    fail = Check("c", CheckStatus.FAIL, "", "fix")
    assert exit_code([ok, warn]) is ExitCode.OK
    assert exit_code([ok, warn, fail]) is ExitCode.ENVIRONMENT


def test_every_problem_has_a_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASTRACHAOS_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))

    def refuse(name: str) -> str:
        raise EnvironmentProblem("down")

    checks = run_doctor("local", probe=refuse)
    problems = [c for c in checks if c.status is not CheckStatus.OK]
    assert {c.name for c in problems} >= {"maven", "cassandra jars", "profile local"}
    assert all(c.fix for c in problems)
