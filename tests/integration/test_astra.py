"""The Astra path end to end: secure connect bundle, metadata service, SNI proxy, token auth.

Against the loopback stand-in (tests/astra_standin) in front of a real auth-enabled node, through
astrachaos's own `astra` profile and session factory. `pytest -k astra` selects every test here.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from astrachaos.config.catalog import resolve
from astrachaos.config.loader import load_scenario
from astrachaos.config.settings import load_profile
from astrachaos.driver.session import connect
from astrachaos.errors import EnvironmentProblem, ExitCode
from astrachaos.run.runner import Runner
from tests.integration.astra_fixture import KEYSPACE, AstraTarget, admin_session, astra
from tests.integration.raw import rows_of_run

__all__ = ["astra"]  # the session fixture, imported so pytest finds it here

pytestmark = pytest.mark.integration

WRONG_TOKEN = "AstraCS:standin:" + "0" * 48

# The CLI with root logging at DEBUG (driver loggers included), as a user debugging would run it.
_DEBUG_CLI = (
    "import logging, sys; logging.basicConfig(level=logging.DEBUG); "
    "from astrachaos.cli import main; sys.argv[0] = 'astrachaos'; main()"
)


@pytest.fixture
def astra_env(astra: AstraTarget, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AstraTarget:
    """The astra variables set in this process; cwd moved away from any `.env`."""
    for name, value in astra.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return astra


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log record at DEBUG, the driver's `cassandra.*` loggers included."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="cassandra")
    return caplog


def assert_no_secret(secrets: list[str], **texts: str) -> None:
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a token leaked into {where}"


def run_dir_text(path: Path) -> str:
    return "\n".join(
        f.read_bytes().decode(errors="replace") for f in sorted(path.rglob("*")) if f.is_file()
    )


def cli(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with debug logging in a clean directory; wide output so messages don't wrap."""
    full_env = {**os.environ, **env, "COLUMNS": "400", "NO_COLOR": "1"}
    full_env.pop("ASTRACHAOS_TOKEN", None)
    repo = Path(__file__).resolve().parents[2]
    full_env["PYTHONPATH"] = str(repo)
    return subprocess.run(
        [sys.executable, "-c", _DEBUG_CLI, *args],
        cwd=tmp_path,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_astra_connects_through_the_bundle_and_round_trips_cql(
    astra_env: AstraTarget, debug_logs: pytest.LogCaptureFixture
) -> None:
    profile = load_profile("astra").profile
    host_id = astra_env.standin.host_ids[0]
    before = len(astra_env.standin.proxy.seen)

    with connect(profile) as connection:
        session = connection.session
        session.execute(
            f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.astra_round_trip (k int PRIMARY KEY, v text)"
        )
        session.execute(f"INSERT INTO {KEYSPACE}.astra_round_trip (k, v) VALUES (1, 'via sni')")
        row = session.execute(f"SELECT v FROM {KEYSPACE}.astra_round_trip WHERE k = 1").one()
        hosts = connection.cluster.metadata.all_hosts()
        user = session.execute("SELECT host_id FROM system.local").one()

    assert row.v == "via sni"
    assert str(user.host_id) == host_id
    # Every connection went through the proxy, named by the node's host_id.
    assert [type(h.endpoint).__name__ for h in hosts] == ["SniEndPoint"]
    through_proxy = astra_env.standin.proxy.seen[before:]
    assert through_proxy and set(through_proxy) == {host_id}
    assert any(r.name.startswith("cassandra.") for r in debug_logs.records)  # driver debug seen
    assert_no_secret([astra_env.token], logs=debug_logs.text)


def test_astra_scenario_passes_in_a_prefixed_table_of_the_existing_keyspace(
    astra_env: AstraTarget, debug_logs: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    scenario = load_scenario(resolve("uploader-verification"), ["target.profile=astra"], random_seed=7)
    out = tmp_path / "run"
    returned = Runner(scenario, out).run()
    result = json.loads((out / "result.json").read_text())

    assert returned.exit_code == ExitCode.OK and result["exit_code"] == 0
    assert result["profile"] == "astra" and result["keyspace"] == KEYSPACE
    assert result["table"].startswith("astrachaos_")
    assert result["counts"]["records"] == result["counts"]["present"] == 15
    # The rows are really in the node, read straight from it (not through the stand-in).
    cluster, session = admin_session(astra_env.node_address)
    try:
        table = f"{KEYSPACE}.{result['table']}"
        rows = rows_of_run(session, table, result["run_id"], scenario.schema_.buckets)
    finally:
        cluster.shutdown()
    assert {r.record_id for r in rows.values()} == set(range(15))
    assert_no_secret([astra_env.token], logs=debug_logs.text, run_dir=run_dir_text(out))


def test_astra_config_show_hides_the_token(astra: AstraTarget, tmp_path: Path) -> None:
    done = cli(tmp_path, astra.env(), "config", "show", "--profile", "astra")

    assert done.returncode == 0, done.stderr
    assert "********" in done.stdout and "ASTRA_DB_APPLICATION_TOKEN" in done.stdout
    assert_no_secret([astra.token], stdout=done.stdout, stderr=done.stderr)


# Each broken set-up: how to build it, and what the message must say to be actionable.
Breakage = Callable[[AstraTarget], dict[str, str]]
FAILURES: dict[str, tuple[Breakage, list[str]]] = {
    "missing-bundle": (
        lambda a: a.env(bundle=a.standin.workdir / "nowhere" / "secure-connect-db.zip"),
        ["secure connect bundle", "does not exist"],
    ),
    "not-a-zip": (lambda a: a.env(bundle=a.standin.not_a_zip()), ["not a zip file"]),
    "bundle-without-config": (
        lambda a: a.env(bundle=a.standin.bundle_without("config.json")),
        ["lacks config.json", "bundle"],
    ),
    "bundle-without-key": (
        lambda a: a.env(bundle=a.standin.bundle_without("key")),
        ["bundle", "lacks key"],
    ),
    "wrong-token": (
        lambda a: a.env(token=WRONG_TOKEN),
        ["authentication failed", "ASTRA_DB_APPLICATION_TOKEN"],
    ),
    "expired-certificate": (
        lambda a: a.env(bundle=a.standin.bundle_with_expired_cert()),
        ["metadata service", "bundle"],
    ),
    "unreachable-metadata": (
        lambda a: a.env(bundle=a.standin.bundle_with_unreachable_metadata()),
        ["metadata service", "bundle"],
    ),
}


# With TLS 1.3 the server checks the client certificate after the client thinks the handshake is
# done, so the client sees either the server's alert or the connection closing under it.
CAUSE_IN_DRIVER_LOG = {
    "expired-certificate": ("CERTIFICATE_EXPIRED", "EOF occurred in violation of protocol"),
    "unreachable-metadata": ("Connection refused",),
}


@pytest.mark.parametrize("breakage", list(FAILURES))
def test_astra_broken_setup_is_an_environment_problem_without_the_token(
    breakage: str,
    astra: AstraTarget,
    debug_logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    build, says = FAILURES[breakage]
    for name, value in build(astra).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)

    with pytest.raises(EnvironmentProblem) as caught:
        connect(load_profile("astra").profile)

    text = str(caught.value)
    for phrase in says:
        assert phrase in text, f"{phrase!r} missing from: {text}"
    # The stand-in failed for the intended reason (the driver logs the cause it then hides).
    if breakage in CAUSE_IN_DRIVER_LOG:
        assert any(cause in debug_logs.text for cause in CAUSE_IN_DRIVER_LOG[breakage])
    assert_no_secret([astra.token, WRONG_TOKEN], message=text, logs=debug_logs.text)


@pytest.mark.parametrize("breakage", list(FAILURES))
def test_astra_broken_setup_exits_4_from_doctor_and_run(
    breakage: str, astra: AstraTarget, tmp_path: Path
) -> None:
    build, says = FAILURES[breakage]
    env = build(astra)

    doctor = cli(tmp_path, env, "doctor", "--profile", "astra")
    run = cli(
        tmp_path, env, "run", "uploader-verification",
        "--set", "target.profile=astra", "--out", str(tmp_path / "run"),
    )

    assert doctor.returncode == ExitCode.ENVIRONMENT, doctor.stdout + doctor.stderr
    assert run.returncode == ExitCode.ENVIRONMENT, run.stdout + run.stderr
    assert "error:" in run.stderr  # astrachaos's one-paragraph message, after the debug log
    for phrase in says:
        assert phrase in doctor.stdout, f"{phrase!r} missing from doctor: {doctor.stdout}"
        assert phrase in run.stderr, f"{phrase!r} missing from run: {run.stderr}"
    files = run_dir_text(tmp_path / "run") if (tmp_path / "run").exists() else ""
    assert_no_secret(
        [astra.token, WRONG_TOKEN],
        doctor_out=doctor.stdout + doctor.stderr,
        run_out=run.stdout + run.stderr,
        run_dir=files,
    )
