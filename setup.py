"""Build hook: the proxy's hot path compiled to C extension modules by mypyc, when it can be.

Everything else about the package is in pyproject.toml. A wheel built here carries, next to each
module listed in HOT_PATH, an extension module that Python imports instead of the source; the
source stays in the wheel and is what runs when compiling is off or impossible:

- `ASTRACHAOS_PURE_PYTHON=1` builds without compiling (the Makefile's editable install does: an
  extension built in place would shadow the source as it is edited);
- with mypy (mypyc) missing, or no C compiler, the build warns and ships pure Python.

The modules are the per-frame and per-write work of `astrachaos proxy --capture`; compiled, the
proxy spends about a quarter less CPU per relayed write (see the README's performance section).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HOT_PATH = [
    "astrachaos/proxy/cql.py",
    "astrachaos/proxy/segments.py",
    "astrachaos/proxy/bound.py",
    "astrachaos/proxy/interception.py",
    "astrachaos/proxy/connection.py",
    "astrachaos/standalone/capture.py",
    "astrachaos/standalone/capture_plan.py",
    "astrachaos/capture/cells.py",
    "astrachaos/capture/journal.py",
    "astrachaos/capture/ledger.py",
    "astrachaos/capture/tape.py",
    "astrachaos/standalone/taped.py",
]
# mypy reads no config file here (the project's names a plugin the build environment lacks); the
# third-party modules the hot path imports have no stubs there, and the modules of ours it imports
# without compiling them are read for their types only (their own findings are `make lint`'s).
MYPYC_OPTIONS = [
    "--config-file=", "--python-version=3.11", "--ignore-missing-imports", "--follow-imports=silent"
]  # fmt: skip


def _warn(message: str) -> None:
    print(f"astrachaos build: {message}; the wheel holds pure Python (it runs, slower)", file=sys.stderr)


def _compiled_modules() -> list[Extension]:
    if os.environ.get("ASTRACHAOS_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _warn("mypyc (from mypy) is not installed")
        return []
    try:
        return list(mypycify(MYPYC_OPTIONS + HOT_PATH, opt_level="3", group_name="astrachaos_hot_path"))
    except (Exception, SystemExit) as error:  # mypy exits on errors it reports
        _warn(f"mypyc could not compile the hot path ({error})")
        return []


class OptionalBuildExt(build_ext):
    """Builds the compiled modules, or none of them: a failure (no compiler) removes what it built."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:
            _warn(f"the C compiler failed ({error})")
            for extension in self.extensions:
                Path(self.get_ext_fullpath(extension.name)).unlink(missing_ok=True)


setup(ext_modules=_compiled_modules(), cmdclass={"build_ext": OptionalBuildExt})
