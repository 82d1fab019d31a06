"""The habits users bring from other CLIs: --version, completion, -v/-q, --json, wide pipes, exit 2."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import astrachaos
from astrachaos.cli.console import configure_output

CLI = [sys.executable, "-m", "astrachaos"]
_NO_DETECTION = "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION"


def cli(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # Piped, as in CI: stdout and stderr are not terminals and $COLUMNS is unset.
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | (env_extra or {})
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=env)


def test_version_prints_the_package_version() -> None:
    done = cli("--version")
    assert (done.returncode, done.stdout) == (0, f"astrachaos {astrachaos.__version__}\n")


def test_completion_scripts_are_offered_for_bash_and_zsh() -> None:
    assert "--install-completion" in cli("--help").stdout
    for shell, marker in (("bash", "complete "), ("zsh", "compdef")):
        # Typer's own switch: name the shell instead of detecting the one running the tests.
        done = cli("--show-completion", shell, env_extra={_NO_DETECTION: "1"})
        assert done.returncode == 0, done.stderr
        assert "_ASTRACHAOS_COMPLETE" in done.stdout and marker in done.stdout


def test_quiet_prints_nothing_on_success_and_only_the_error_on_failure() -> None:
    done = cli("-q", "scenarios", "list")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    failed = cli("--quiet", "scenarios", "show", "no-such-scenario")
    assert failed.returncode == 3
    assert failed.stdout == ""
    assert failed.stderr.startswith("error: unknown scenario 'no-such-scenario'")


@pytest.fixture
def restored_loggers() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in ("astrachaos", "cassandra")]
    saved = [(logger.level, list(logger.handlers)) for logger in loggers]
    yield
    for logger, (level, handlers) in zip(loggers, saved, strict=True):
        logger.setLevel(level)
        logger.handlers[:] = handlers


def test_one_v_is_astrachaos_debug_two_add_the_driver(restored_loggers: None) -> None:
    configure_output(1, quiet=False)
    assert logging.getLogger("astrachaos.run").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("cassandra.cluster").isEnabledFor(logging.DEBUG)
    configure_output(2, quiet=False)
    assert logging.getLogger("cassandra.cluster").isEnabledFor(logging.DEBUG)


def test_piped_tables_are_not_cut_at_80_columns() -> None:
    done = cli("scenarios", "list")
    assert done.returncode == 0
    assert "…" not in done.stdout
    longest = max(len(line) for line in done.stdout.splitlines())
    assert longest > 80


@pytest.mark.parametrize(
    "command",
    [
        ["scenarios", "list"],
        ["injectors", "list"],
        ["config", "show", "--profile", "local3"],
    ],
)
def test_json_is_one_document_on_stdout(command: list[str]) -> None:
    done = cli(*command, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)


def test_every_command_that_reports_offers_json() -> None:
    for command in (["run"], ["doctor"], ["config", "show"], ["local", "status"],
                    ["scenarios", "list"], ["injectors", "list"], ["reconcile"]):  # fmt: skip
        assert "--json" in cli(*command, "--help").stdout, command


def test_set_without_equals_is_a_usage_error() -> None:
    done = cli("scenarios", "show", "queue-overflow", "--set", "workload.records")
    assert done.returncode == 2
    assert "expected PATH=VALUE" in done.stderr


def test_verify_and_report_of_a_missing_directory_give_the_same_usage_error(
    tmp_path: Path,
) -> None:
    missing = str(tmp_path / "no-such-run")
    codes = {cli(command, missing).returncode for command in ("verify", "report")}
    assert codes == {2}
