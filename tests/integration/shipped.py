"""The wheel as a release builds it: built once per test session, shared by the tests that need it.

`python -m build` (isolated, as pipx or a release job would) writes the sdist and the wheel into a
temporary directory from a copy of the files git tracks, so nothing is written into the checkout.
`test_wheel.py` installs that wheel; the proxy tests run `astrachaos` from it unpacked, so they
test the proxy users get (its hot path compiled by mypyc, see setup.py).
`ASTRACHAOS_TEST_SOURCE=1` runs the proxy tests from the checkout instead (no build).
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
# Scratch directories whose changes during a test session are not the build's doing.
_CACHES = ("__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache", "runs/")


@dataclass(frozen=True)
class Build:
    """The sdist and wheel built from a clean copy, and what building them printed and changed."""

    dist: Path
    output: str
    returncode: int
    seconds: float
    wrote_into_checkout: bool

    @property
    def wheel(self) -> Path:
        return next(self.dist.glob("astrachaos-*.whl"))


def _tree_state() -> list[str]:
    listing = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return sorted(line for line in listing if not any(cache in line for cache in _CACHES))


def copy_clean_tree(target: Path) -> None:
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


@functools.cache
def _scratch() -> Path:
    root = Path(tempfile.mkdtemp(prefix="astrachaos-shipped-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@functools.cache
def build() -> Build:
    """Build the sdist and the wheel (once per session; a failed build is returned, not raised)."""
    root = _scratch()
    before = _tree_state()
    began = time.monotonic()
    copy_clean_tree(root / "src")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(root / "dist"), str(root / "src")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    return Build(
        dist=root / "dist",
        output=done.stdout + done.stderr,
        returncode=done.returncode,
        seconds=time.monotonic() - began,
        wrote_into_checkout=_tree_state() != before,
    )


@functools.cache
def unpacked() -> Path:
    """The built wheel unpacked: a directory that imports as the installed package would."""
    built = build()
    assert built.returncode == 0, built.output
    tree = _scratch() / "unpacked"
    with zipfile.ZipFile(built.wheel) as wheel:
        wheel.extractall(tree)
    return tree


def astrachaos() -> list[str]:
    """The command that runs `astrachaos` as shipped (the checkout's with ASTRACHAOS_TEST_SOURCE=1).

    `-P`: neither the working directory nor the checkout comes before the unpacked wheel on
    sys.path; the dependencies are this venv's.
    """
    if os.environ.get("ASTRACHAOS_TEST_SOURCE"):
        return [sys.executable, "-m", "astrachaos"]
    tree = unpacked()
    start = (
        f"import runpy, sys; sys.path.insert(0, {str(tree)!r}); sys.argv[0] = 'astrachaos'; "
        "runpy.run_module('astrachaos', run_name='__main__')"
    )
    return [sys.executable, "-P", "-c", start]
