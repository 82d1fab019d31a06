"""A bug is never read as a verdict: exit 70, one line naming the saved traceback, -v prints it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

import astrachaos.cli as cli
from astrachaos.cli import crash
from astrachaos.errors import ExitCode


def _crash_main(monkeypatch: pytest.MonkeyPatch) -> int:
    def broken_command(**_: object) -> None:  # called as app(prog_name=...)
        {}["missing"]  # the bug under test

    monkeypatch.setattr(cli, "_register", lambda: None)
    monkeypatch.setattr(cli, "app", broken_command)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    return int(exited.value.code or 0)


def test_an_unexpected_exception_exits_70_not_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(crash, "current_run_dir", tmp_path)
    assert _crash_main(monkeypatch) == ExitCode.INTERNAL_ERROR == 70
    assert ExitCode.INTERNAL_ERROR not in (ExitCode.EXPECTATIONS_UNMET, ExitCode.INCONCLUSIVE)


def test_the_message_is_one_line_naming_the_traceback_in_the_run_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(crash, "current_run_dir", tmp_path)
    monkeypatch.delenv(crash.VERBOSE_ENV, raising=False)
    _crash_main(monkeypatch)
    err = capsys.readouterr().err
    (saved,) = tmp_path.glob("crash-*.txt")
    assert err.count("\n") == 1
    assert "this is a bug in astrachaos" in err and "KeyError: 'missing'" in err
    assert str(saved) in err and "-v" in err
    assert "Traceback" not in err
    assert "Traceback (most recent call last)" in saved.read_text()
    assert "broken_command" in saved.read_text()


def test_without_a_run_directory_the_traceback_goes_to_a_temp_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(crash, "current_run_dir", None)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _crash_main(monkeypatch)
    (saved,) = tmp_path.glob(f"{crash.CRASH_FILE_PREFIX}*.txt")
    assert str(saved) in capsys.readouterr().err


def test_verbose_prints_the_traceback_inline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(crash, "current_run_dir", tmp_path)
    monkeypatch.setenv(crash.VERBOSE_ENV, "1")
    assert _crash_main(monkeypatch) == 70
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "this is a bug" in err


def test_the_verbose_option_sets_verbose_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    monkeypatch.setenv(crash.VERBOSE_ENV, "0")  # restored after the test
    cli._register()
    CliRunner().invoke(cli.app, ["-v", "scenarios", "list"])
    assert os.environ.get(crash.VERBOSE_ENV) == "1"


def test_a_full_disk_is_an_environment_problem_not_a_bug(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import errno

    def disk_full(**_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "faults.json"))

    monkeypatch.setattr(crash, "current_run_dir", tmp_path)
    monkeypatch.setattr(cli, "_register", lambda: None)
    monkeypatch.setattr(cli, "app", disk_full)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == ExitCode.ENVIRONMENT
    err = capsys.readouterr().err
    assert "faults.json: No space left on device" in err and "free disk space" in err
    assert not list(tmp_path.glob("crash-*.txt"))
