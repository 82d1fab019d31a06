"""Shipped and user scenarios (and suites) found by name, along a search path of directories."""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from astrachaos.errors import InvalidScenario

# The package is the one source of truth: shipped scenarios, suites and profiles are package
# data (`astrachaos/scenarios`, `astrachaos/suites`, `astrachaos/profiles`), so a wheel carries
# them. The checkout's top-level `scenarios/` and `configs/` are symbolic links to those folders.
log = logging.getLogger(__name__)
ENV_VAR = "ASTRACHAOS_SCENARIOS_DIR"
SUFFIX = ".yaml"
_PACKAGE = Path(__file__).resolve().parent.parent  # the astrachaos package
SCENARIOS = "scenarios"
SUITES = "suites"


def search_path(
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    package: Path = _PACKAGE,
    folder: str = SCENARIOS,
) -> list[Path]:
    """Directories searched for scenarios (or suites), first match winning.

    1. each directory in `$ASTRACHAOS_SCENARIOS_DIR` (os.pathsep-separated; scenarios only);
    2. `./scenarios` (or `./suites`) in the working directory;
    3. `astrachaos/scenarios/` (or `suites/`) inside the package: the shipped ones.
    """
    environ = os.environ if environ is None else environ
    found = []
    if folder == SCENARIOS:
        found = [Path(entry) for entry in environ.get(ENV_VAR, "").split(os.pathsep) if entry]
    found.append((cwd or Path.cwd()) / folder)
    found.append(package / folder)
    unique: dict[Path, Path] = {}
    for directory in found:
        if directory.is_dir():
            unique.setdefault(directory.resolve(), directory)
    return list(unique.values())


def entries(directories: Sequence[Path] | None = None) -> dict[str, Path]:
    """Every scenario name on the search path and the file that wins for it, sorted by name."""
    found: dict[str, Path] = {}
    for directory in search_path() if directories is None else directories:
        for file in sorted(directory.glob(f"*{SUFFIX}")):
            if file.is_file():
                found.setdefault(file.stem, file)
    return dict(sorted(found.items()))


def resolve(
    name_or_path: str, directories: Sequence[Path] | None = None, what: str = "scenario"
) -> Path:
    """An existing file as given, else the catalog scenario (or suite: `what`) of that name."""
    given = Path(name_or_path)
    if given.is_file():
        return given
    if given.suffix in (SUFFIX, ".yml") or os.sep in name_or_path or "/" in name_or_path:
        raise InvalidScenario(f"{name_or_path}: no such file")
    directories = search_path() if directories is None else directories
    known = entries(directories)
    if name_or_path in known:
        log.debug("scenario %s is %s", name_or_path, known[name_or_path])
        return known[name_or_path]
    close = difflib.get_close_matches(name_or_path, known, n=1)
    suggestion = f" (did you mean {close[0]!r}?)" if close else ""
    searched = ", ".join(str(directory) for directory in directories) or f"(no {what}s directory)"
    where = f"set ${ENV_VAR} or pass a file path" if what == "scenario" else "pass a file path"
    raise InvalidScenario(
        f"unknown {what} {name_or_path!r}{suggestion}; known {what}s: "
        f"{', '.join(known) or '(none)'}",
        hint=f"searched {searched}; {where}",
    )


def resolve_suite(name_or_path: str) -> Path:
    """An existing suite file as given, else the shipped (or ./suites) suite of that name."""
    return resolve(name_or_path, search_path(folder=SUITES), what="suite")


def profiles_dir(package: Path = _PACKAGE) -> Path:
    """The shipped profiles (`local`, `local3`, `cassandra`, `astra`), searched after ./configs."""
    return package / "profiles"
