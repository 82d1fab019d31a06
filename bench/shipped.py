"""The package as its wheel ships it (the proxy's hot path compiled by mypyc), for the benchmarks.

`tree()` is the wheel the tests build and install (`tests/integration/shipped.py`: `python -m
build`, isolated as a release would build it, from a copy of the files git tracks with the working
tree's changes), unpacked into a temporary directory, once per process. A proxy started with that
directory as its working directory (`python -m astrachaos`) imports the compiled modules; its
dependencies are this venv's.
"""

from __future__ import annotations

from pathlib import Path

from tests.integration import shipped


def tree() -> Path:
    """The unpacked wheel (SystemExit with the build's output if it failed or compiled nothing)."""
    built = shipped.build()
    if built.returncode != 0:
        raise SystemExit(f"bench: building the wheel failed:\n{built.output}")
    unpacked = shipped.unpacked()
    if not any(unpacked.rglob("*.so")):
        raise SystemExit(f"bench: the wheel holds no compiled module:\n{built.output}")
    return unpacked
