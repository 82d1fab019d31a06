"""Reconcile engines without a database: the work unit's secrets, engine choice, rate, failures."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
import time

import pytest
from pydantic import SecretStr

from astrachaos.config.settings import Profile
from astrachaos.errors import EnvironmentProblem, ExitCode, UsageProblem
from astrachaos.reconcile.engines.choice import EngineKind, build_engine
from astrachaos.reconcile.engines.interface import EngineContext
from astrachaos.reconcile.engines.processes import LocalProcesses
from astrachaos.reconcile.engines.threads import Threads
from astrachaos.reconcile.portable import PortableProfile
from astrachaos.reconcile.rangediff import RangeJob, RangeOutcome, SideSpec, _RowRate
from astrachaos.reconcile.schema import Column, TableSchema
from astrachaos.reconcile.tokens import split_ring

SECRET = "pa55-W0rd-never-shown"
SPARK_REDACTION = re.compile(r"(?i)secret|password|token|access[.]?key")  # Spark's default regex
SCHEMA = TableSchema("ks", "t", (Column("p", "int", "partition_key"),), (), (Column("v", "text", "regular"),))


def job_for(profile: PortableProfile) -> RangeJob:
    """A job over ks.t on both sides."""
    side = SideSpec("x:ks.t", profile, SCHEMA)
    return RangeJob(side, side, SCHEMA.values, page_size=100, tolerance_us=None, fresh_after_us=0)


def secured() -> Profile:
    """A profile with a password."""
    return Profile(name="prod-east", kind="cassandra", contact_points=["10.0.0.1"], username="app",
                   password=SecretStr(SECRET))  # fmt: skip


def test_the_work_unit_pickles_and_prints_without_the_profile_secret() -> None:
    from pyspark import cloudpickle  # what Spark ships to executors

    portable = PortableProfile.of(secured())
    job = job_for(portable)
    assert SECRET not in repr(job)
    assert SECRET.encode() not in pickle.dumps(job)
    assert SECRET.encode() not in cloudpickle.dumps(job)
    assert portable.secret_env(secured()) == {"ASTRACHAOS_RECONCILE_PROD_EAST_PASSWORD": SECRET}


def test_a_worker_takes_the_secret_from_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    portable = PortableProfile.of(secured())
    monkeypatch.delenv("ASTRACHAOS_RECONCILE_PROD_EAST_PASSWORD", raising=False)
    with pytest.raises(EnvironmentProblem) as missing:
        portable.load()
    message = str(missing.value)
    assert "ASTRACHAOS_RECONCILE_PROD_EAST_PASSWORD" in message and SECRET not in message
    monkeypatch.setenv("ASTRACHAOS_RECONCILE_PROD_EAST_PASSWORD", SECRET)
    loaded = portable.load()
    assert loaded == secured() and loaded.password is not None
    assert loaded.password.get_secret_value() == SECRET


def test_spark_redacts_the_secret_variables_by_their_names() -> None:
    portable = PortableProfile("astra", "{}", ("password", "token"))
    assert all(SPARK_REDACTION.search(portable.env_name(s)) for s in ("password", "token"))


def test_engine_choice_follows_the_options() -> None:
    assert build_engine(EngineKind.LOCAL, workers=1, concurrency=4) == Threads(4)
    assert build_engine(EngineKind.LOCAL, workers=3, concurrency=4) == LocalProcesses(workers=3, threads=4)
    with pytest.raises(UsageProblem):
        build_engine(EngineKind.SPARK, workers=2, concurrency=4)
    with pytest.raises(UsageProblem):
        build_engine(EngineKind.LOCAL, workers=1, concurrency=4, spark_master="local[2]")


def test_without_pyspark_engine_spark_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark → ImportError
    with pytest.raises(EnvironmentProblem) as missing:
        build_engine(EngineKind.SPARK, workers=1, concurrency=4)
    assert missing.value.exit_code is ExitCode.ENVIRONMENT and "astrachaos[spark]" in str(missing.value)


def test_cli_without_pyspark_exits_4_with_the_install_command() -> None:
    code = ("import sys; sys.modules['pyspark'] = None\n"
            "from tests.integration.test_reconcile import _CLI\nexec(_CLI)")  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", code, "reconcile", "--source", "ks.a", "--target", "ks.b", "--engine", "spark",
         "--out", "/tmp/never-written"], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert "pip install 'astrachaos[spark]'" in done.stderr


def test_row_rate_holds_a_process_to_its_rows_per_second() -> None:
    rate = _RowRate(1000)
    began = time.monotonic()
    for _ in range(10):
        rate.take(100)
    assert 0.9 <= time.monotonic() - began < 3.0


def test_ranges_a_worker_process_cannot_read_come_back_failed() -> None:
    unbound = PortableProfile("nowhere", "{}")  # a worker cannot build a profile from it
    ranges = split_ring(2)
    outcomes: list[RangeOutcome] = []
    LocalProcesses(workers=2, threads=1).run(job_for(unbound), ranges, outcomes.append, EngineContext())
    assert sorted(o.token_range for o in outcomes) == list(ranges)
    assert all(o.findings is None and o.error for o in outcomes)
