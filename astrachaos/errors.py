"""One root exception, its families, and the exit code each family maps to (a public contract)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; documented in the README and never reused for another meaning."""

    OK = 0
    """All expectations met."""
    EXPECTATIONS_UNMET = 1
    """Data lost or a budget broken."""
    USAGE = 2
    """The command line was wrong."""
    INVALID_SCENARIO = 3
    """A scenario or configuration file is invalid."""
    ENVIRONMENT = 4
    """Cannot connect, cannot provision, an injector cannot apply."""
    INCONCLUSIVE = 5
    """Verification could not read everything."""
    ROLLBACK_FAILED = 6
    """A fault may still be active."""
    INTERNAL_ERROR = 70
    """A bug in astrachaos (an unexpected exception); never a verdict about the data."""
    INTERRUPTED = 130
    """Interrupted by the user, after rollback."""


SEVERITY: tuple[ExitCode, ...] = (
    ExitCode.OK,
    ExitCode.EXPECTATIONS_UNMET,
    ExitCode.INCONCLUSIVE,
    ExitCode.INVALID_SCENARIO,
    ExitCode.USAGE,
    ExitCode.ENVIRONMENT,
    ExitCode.INTERNAL_ERROR,
    ExitCode.ROLLBACK_FAILED,
    ExitCode.INTERRUPTED,
)
"""Least to most severe: when several outcomes meet (sides of a run, scenarios of one command,
entries of a suite), the most severe one is the process's exit code. A possibly active fault
(6) outranks everything but the user's own interrupt; what was proven (1) outranks nothing."""


def worst(codes: Iterable[ExitCode | int]) -> ExitCode:
    """The most severe of `codes` (see SEVERITY); OK when there are none."""
    return max((ExitCode(c) for c in codes), key=SEVERITY.index, default=ExitCode.OK)


class AstrachaosError(Exception):
    """Root of every error astrachaos reports to a user; carries its exit code."""

    exit_code: ExitCode = ExitCode.ENVIRONMENT

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nHint: {self.hint}"


class UsageProblem(AstrachaosError):
    """The command line asks for something impossible."""

    exit_code = ExitCode.USAGE


class InvalidScenario(AstrachaosError):
    """A scenario, suite or config file is malformed or holds impossible values."""

    exit_code = ExitCode.INVALID_SCENARIO


class EnvironmentProblem(AstrachaosError):
    """The machine or the database is not in a state astrachaos can work with."""

    exit_code = ExitCode.ENVIRONMENT


class Inconclusive(AstrachaosError):
    """Verification could not read everything it needed to give a verdict."""

    exit_code = ExitCode.INCONCLUSIVE


class RollbackFailed(AstrachaosError):
    """An injector could not be rolled back; a fault may still be active."""

    exit_code = ExitCode.ROLLBACK_FAILED


class Interrupted(AstrachaosError):
    """The user interrupted the run; faults were rolled back and the run directory is kept."""

    exit_code = ExitCode.INTERRUPTED
