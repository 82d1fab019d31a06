"""The wheel is the product: built from a clean copy, installed in a fresh venv, run from nowhere.

One module-scoped build: `python -m build` (isolated, as pipx or a release job would) writes the
sdist and the wheel into a temporary directory from a copy of the files git tracks, so nothing is
written into the checkout. The wheel goes into a venv without the checkout on any path, and every
command runs from an empty directory: only what the wheel carries can answer.
"""

from __future__ import annotations

import json
import os
import shutil
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

pytestmark = pytest.mark.integration

CHECKOUT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.stem for p in (CHECKOUT / "astrachaos" / "scenarios").glob("*.yaml"))
# Scratch directories whose changes during a test session are not the build's doing.
_CACHES = ("__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache", "runs/")


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


def _tree_state() -> list[str]:
    listing = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return sorted(line for line in listing if not any(cache in line for cache in _CACHES))


def _copy_clean_tree(target: Path) -> None:
    """The files git would commit (tracked and not ignored), symbolic links kept as links."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=CHECKOUT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in sorted(set(filter(None, listed.split("\0")))):
        source = CHECKOUT / name
        if not os.path.lexists(source):
            continue  # deleted in the working tree, not yet committed
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name, follow_symlinks=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("wheel")
    seconds: dict[str, float] = {}
    before = _tree_state()

    began = time.monotonic()
    _copy_clean_tree(root / "src")
    build = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(root / "dist"), str(root / "src")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds["build"] = time.monotonic() - began
    assert build.returncode == 0, build.stdout + build.stderr
    assert _tree_state() == before, "the build wrote into the source tree"

    began = time.monotonic()
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # The test venv's pip installs into the new venv (no pip bootstrap there); its cache is
    # reused, and skipping byte-compilation halves the time (plotly alone is thousands of files).
    wheel = next((root / "dist").glob("astrachaos-*.whl"))
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--quiet", "--no-compile", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    seconds["install"] = time.monotonic() - began
    assert install.returncode == 0, install.stdout + install.stderr
    empty = root / "empty"
    empty.mkdir()
    yield Installed(root / "dist", build.stdout + build.stderr, venv / "bin", empty, seconds)
    print(f"wheel test: build {seconds['build']:.1f} s, install {seconds['install']:.1f} s")


def test_the_build_makes_a_wheel_and_an_sdist_without_warnings(installed: Installed) -> None:
    assert "Successfully built" in installed.build_output
    assert "deprecated" not in installed.build_output.lower()
    assert "BuildBackendWarning" not in installed.build_output
    wheel = next(installed.dist.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for scenario in SHIPPED:
        assert f"astrachaos/scenarios/{scenario}.yaml" in names
    for shipped in ("profiles/local.yaml", "profiles/local3.yaml", "suites/comprehensive.yaml"):
        assert f"astrachaos/{shipped}" in names
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


def test_a_short_queue_overflow_run_reports_the_silent_loss(
    installed: Installed, local_cluster: Any
) -> None:
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
