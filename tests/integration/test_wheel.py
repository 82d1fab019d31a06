"""The wheel is the product: built from a clean copy, installed in a fresh venv, run from nowhere.

One build per session (`shipped.py`: `python -m build`, isolated, as pipx or a release job would,
from a copy of the files git tracks, so nothing is written into the checkout). The wheel goes
into a venv without the checkout on any path, and every command runs from an empty directory:
only what the wheel carries can answer. The wheel carries the proxy's hot path compiled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import astrachaos
from tests.integration import shipped

pytestmark = pytest.mark.integration

CHECKOUT = shipped.CHECKOUT
SHIPPED = sorted(p.stem for p in (CHECKOUT / "astrachaos" / "scenarios").glob("*.yaml"))
# Modules setup.py compiles (a sample: the relay's framing, its policy hook, the capture's two ends).
COMPILED = ("proxy/cql", "proxy/interception", "standalone/capture", "standalone/taped", "capture/ledger",
            "capture/tape")  # fmt: skip


@dataclass(frozen=True)
class Installed:
    """A wheel installed in a fresh venv, and an empty directory to run it from."""

    dist: Path
    build_output: str
    bin: Path
    empty: Path
    seconds: dict[str, float]

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("ASTRACHAOS_") and k not in ("VIRTUAL_ENV", "PYTHONPATH", "COLUMNS")
        }
        return subprocess.run(
            [str(self.bin / "astrachaos"), *args],
            cwd=self.empty,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("wheel")
    built = shipped.build()  # shared with the proxy tests (they run the same wheel, unpacked)
    assert built.returncode == 0, built.output
    assert not built.wrote_into_checkout, "the build wrote into the source tree"
    seconds = {"build": built.seconds}

    began = time.monotonic()
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # The test venv's pip installs into the new venv (no pip bootstrap there); its cache is
    # reused, and skipping byte-compilation halves the time (plotly alone is thousands of files).
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--quiet", "--no-compile", "--disable-pip-version-check", str(built.wheel)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    seconds["install"] = time.monotonic() - began
    assert install.returncode == 0, install.stdout + install.stderr
    empty = root / "empty"
    empty.mkdir()
    yield Installed(built.dist, built.output, venv / "bin", empty, seconds)
    print(f"wheel test: build {seconds['build']:.1f} s, install {seconds['install']:.1f} s")


def test_the_build_makes_a_wheel_and_an_sdist_without_warnings(installed: Installed) -> None:
    assert "Successfully built" in installed.build_output
    assert "deprecated" not in installed.build_output.lower()
    assert "BuildBackendWarning" not in installed.build_output
    wheel = next(installed.dist.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for scenario in SHIPPED:
        assert f"astrachaos/scenarios/{scenario}.yaml" in names
    for resource in ("profiles/local.yaml", "profiles/local3.yaml", "suites/comprehensive.yaml"):
        assert f"astrachaos/{resource}" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    sdist = next(installed.dist.glob("*.tar.gz"))
    with tarfile.open(sdist) as archive:
        assert any(member.name.endswith("/LICENSE") for member in archive.getmembers())


def test_version_is_the_package_version(installed: Installed) -> None:
    done = installed.cli("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"astrachaos {astrachaos.__version__}"


def test_every_shipped_scenario_is_listed_from_an_empty_directory(installed: Installed) -> None:
    done = installed.cli("scenarios", "list", "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert [row["name"] for row in listed] == SHIPPED
    assert not [row for row in listed if row.get("error")]
    table = installed.cli("scenarios", "list")
    for name in SHIPPED:
        assert f"│ {name} " in table.stdout


def test_a_shipped_scenario_is_shown_resolved(installed: Installed) -> None:
    done = installed.cli("scenarios", "show", "queue-overflow")
    assert done.returncode == 0, done.stderr
    assert "name: queue-overflow" in done.stdout
    assert "pattern:" in done.stdout and "uploader" in done.stdout


def test_the_local3_profile_ships_with_the_wheel(installed: Installed) -> None:
    done = installed.cli("config", "show", "--profile", "local3", "--json")
    assert done.returncode == 0, done.stderr
    settings = {row["key"]: row for row in json.loads(done.stdout)["settings"]}
    assert settings["contact_points"]["value"] == ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
    assert settings["contact_points"]["source"] == "built-in local3"


def test_a_short_queue_overflow_run_reports_the_silent_loss(installed: Installed, local_cluster: Any) -> None:
    out = installed.empty.parent / "run"
    done = installed.cli(
        "run", "queue-overflow", "--set", "workload.records=3000", "--out", str(out), timeout=300
    )
    assert done.returncode == 1, done.stdout + done.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["counts"]["silent"] > 0
    assert "records not ok" in done.stdout
    assert "RequestThrottlingError" in done.stdout  # piped: not cut at 80 columns
    silent_keys = [r for r in result["records"] if r["silent"]]
    assert len(silent_keys) == result["counts"]["silent"]


def test_the_wheel_carries_the_proxys_hot_path_compiled_and_its_source(installed: Installed) -> None:
    names = zipfile.ZipFile(next(installed.dist.glob("*.whl"))).namelist()
    for module in COMPILED:
        assert any(n.startswith(f"astrachaos/{module}.cpython-") and n.endswith(".so") for n in names), module
        assert f"astrachaos/{module}.py" in names  # what runs where compiling is impossible


def test_the_installed_proxy_captures_through_its_compiled_hot_path(
    installed: Installed, local_cluster: Any, tmp_path: Path
) -> None:
    from cassandra.cluster import Cluster
    from cassandra.policies import RoundRobinPolicy

    from tests.integration.proxy_harness import running_proxy

    capture, out = tmp_path / "capture", tmp_path / "verdict"
    args = ["--upstream", "127.0.0.1:9042", "--capture", str(capture)]
    with running_proxy(args, program=[str(installed.bin / "astrachaos")], cwd=installed.empty) as proxy:
        assert "hot path: compiled (mypyc)\n" in proxy.output, proxy.output
        host, port = proxy.listen[0]
        cluster = Cluster([host], port=port, load_balancing_policy=RoundRobinPolicy())
        try:
            session = cluster.connect()
            session.execute("CREATE KEYSPACE IF NOT EXISTS wheel_proxy WITH replication = "
                            "{'class': 'SimpleStrategy', 'replication_factor': 1}")  # fmt: skip
            session.execute("DROP TABLE IF EXISTS wheel_proxy.t")
            session.execute("CREATE TABLE wheel_proxy.t (k int, c int, v text, PRIMARY KEY (k, c))")
            insert = session.prepare("INSERT INTO wheel_proxy.t (k, c, v) VALUES (?, ?, ?)")
            for i in range(500):
                session.execute(insert, (i % 7, i, f"value {i}"))
        finally:
            cluster.shutdown()
        assert proxy.interrupt() == 130
    done = installed.cli("verify", "--capture", str(capture), "--out", str(out), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    counts = json.loads((out / "result.json").read_text())["counts"]
    assert counts["captured"] == counts["ok"] == counts["told_success"] == 500


def test_without_a_c_compiler_the_wheel_holds_pure_python_that_runs(tmp_path: Path) -> None:
    """setup.py's fallback: the compiler fails (CC=/bin/false), the build still succeeds, ships
    no extension module, and the proxy's modules import and run as pure Python."""
    shipped.copy_clean_tree(tmp_path / "src")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--verbose",
         "--wheel-dir", str(tmp_path / "dist"), str(tmp_path / "src")],
        capture_output=True, text=True, timeout=600, env={**os.environ, "CC": "/bin/false"},
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    assert "astrachaos build: the C compiler failed" in build.stdout + build.stderr
    wheel = next((tmp_path / "dist").glob("astrachaos-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        assert not [n for n in archive.namelist() if n.endswith(".so")]
        archive.extractall(tmp_path / "unpacked")
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); from astrachaos.proxy import hot_path, cql; "
             "print(hot_path(), cql.__file__)")  # fmt: skip
    done = subprocess.run([sys.executable, "-P", "-c", probe, str(tmp_path / "unpacked")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"pure Python {tmp_path / 'unpacked' / 'astrachaos' / 'proxy' / 'cql.py'}"


COMPILED_UNIT_TESTS = [
    "tests/unit/test_capture_tape.py", "tests/unit/test_capture_journal.py",
    "tests/unit/test_capture_ledger.py", "tests/unit/test_proxy_schema_lookup.py",
]  # fmt: skip


def test_the_capture_unit_tests_pass_against_the_compiled_modules() -> None:
    """The unit tests run the source; these run again with the wheel's compiled modules imported
    instead (mypyc has compiled working Python into code that wrote every journal record twice)."""
    tree = shipped.unpacked()
    probe = (
        "import astrachaos.standalone.taped as t, astrachaos.capture.journal as j; "
        "print(t.__file__, j.__file__)"
    )
    imported = subprocess.run(
        [sys.executable, "-P", "-c", probe], capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, "PYTHONPATH": str(tree)},
    )  # fmt: skip
    assert all(path.endswith(".so") for path in imported.stdout.split()), imported.stdout
    done = subprocess.run(
        [sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=append",
         "--rootdir", str(CHECKOUT), *COMPILED_UNIT_TESTS],
        capture_output=True, text=True, cwd=CHECKOUT, timeout=600,
        env={**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{CHECKOUT}"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
