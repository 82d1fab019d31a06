"""An unexpected exception is a bug: one line naming where its traceback was saved, exit 70."""

from __future__ import annotations

import errno
import os
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

from astrachaos.errors import EnvironmentProblem

CRASH_FILE_PREFIX = "astrachaos-crash-"
VERBOSE_ENV = "ASTRACHAOS_VERBOSE"

# The run directory of the command in progress, if any: a bug's traceback is saved there.
current_run_dir: Path | None = None


# I/O failures that say something about the machine, not about astrachaos's code.
_MACHINE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO, errno.EMFILE}
)


def as_environment_problem(error: BaseException) -> EnvironmentProblem | None:
    """Disk full, permission denied, read-only file system: an environment problem (exit 4)."""
    if isinstance(error, OSError) and error.errno in _MACHINE_ERRNOS:
        where = f"{error.filename}: " if error.filename else ""
        return EnvironmentProblem(
            f"{where}{error.strerror}",
            hint="check free disk space and the permissions of the run directory",
        )
    return None


def save_traceback(error: BaseException, directory: Path | None = None) -> Path:
    """Write the full traceback to `directory` (a run directory) or a temp file; return its path."""
    text = "".join(traceback.format_exception(error))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    if directory is not None and directory.is_dir():
        try:
            path = directory / f"crash-{stamp}.txt"
            path.write_text(text)
            return path
        except OSError:
            pass  # a read-only or full run directory: fall back to the temp directory
    handle, name = tempfile.mkstemp(prefix=f"{CRASH_FILE_PREFIX}{stamp}-", suffix=".txt")
    with os.fdopen(handle, "w") as file:
        file.write(text)
    return Path(name)


def bug_message(error: BaseException, saved: Path) -> str:
    """The one line a user sees for a bug: what broke, where the traceback is, how to see it."""
    first_line = next(iter(str(error).splitlines()), "")
    return (
        f"internal error (this is a bug in astrachaos, not a verdict about your data): "
        f"{type(error).__name__}: {first_line}; full traceback in {saved} "
        f"(run with -v to print it)"
    )
