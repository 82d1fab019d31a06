"""Shipped and user scenarios found by name, along a search path of `scenarios/` directories."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from astrachaos.errors import InvalidScenario

# A wheel carries only what sits inside the package at build time: shipped scenarios reach a
# non-editable install through `astrachaos/scenarios/*.yaml` (package data in pyproject.toml);
# the checkout's top-level `scenarios/` is searched only when running from that checkout.
ENV_VAR = "ASTRACHAOS_SCENARIOS_DIR"
SUFFIX = ".yaml"
_PACKAGE = Path(__file__).resolve().parent.parent  # the astrachaos package


def search_path(
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    package: Path = _PACKAGE,
) -> list[Path]:
    """Directories searched for scenarios, first match winning.

    1. each directory in `$ASTRACHAOS_SCENARIOS_DIR` (os.pathsep-separated);
    2. `./scenarios` in the working directory;
    3. `scenarios/` of the source checkout the package runs from (editable installs);
    4. `astrachaos/scenarios/` inside the installed package (wheels ship it as package data).
    """
    environ = os.environ if environ is None else environ
    found = [Path(entry) for entry in environ.get(ENV_VAR, "").split(os.pathsep) if entry]
    found.append((cwd or Path.cwd()) / "scenarios")
    # A site-packages directory may hold an unrelated top-level `scenarios`; a checkout has this.
    if (package.parent / "pyproject.toml").is_file():
        found.append(package.parent / "scenarios")
    found.append(package / "scenarios")
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


def resolve(name_or_path: str, directories: Sequence[Path] | None = None) -> Path:
    """An existing file as given, else the catalog scenario of that name."""
    given = Path(name_or_path)
    if given.is_file():
        return given
    if given.suffix in (SUFFIX, ".yml") or os.sep in name_or_path or "/" in name_or_path:
        raise InvalidScenario(f"{name_or_path}: no such file")
    directories = search_path() if directories is None else directories
    known = entries(directories)
    if name_or_path in known:
        return known[name_or_path]
    close = difflib.get_close_matches(name_or_path, known, n=1)
    suggestion = f" (did you mean {close[0]!r}?)" if close else ""
    searched = ", ".join(str(directory) for directory in directories) or "(no scenarios directory)"
    raise InvalidScenario(
        f"unknown scenario {name_or_path!r}{suggestion}; known scenarios: "
        f"{', '.join(known) or '(none)'}",
        hint=f"searched {searched}; set ${ENV_VAR} or pass a file path",
    )
