"""The package as its wheel ships it (the proxy's hot path compiled by mypyc), for the benchmarks.

`tree()` builds the wheel of this checkout once per process (no build isolation: this venv's
setuptools and mypy; about 75 s on two cores) from a copy of the files git tracks and the working
tree's changes, unpacks it into a temporary directory and returns that directory. A proxy started
with it as its working directory (`python -m astrachaos`) imports the compiled modules; its
dependencies are this venv's.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


@functools.cache
def tree() -> Path:
    """The unpacked wheel (SystemExit with the build's output if it failed or compiled nothing)."""
    root = Path(tempfile.mkdtemp(prefix="astrachaos-bench-wheel-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=CHECKOUT, capture_output=True, check=True).stdout.decode()  # fmt: skip
    for name in filter(None, set(listed.split("\0"))):
        if os.path.lexists(CHECKOUT / name):
            (root / "src" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(CHECKOUT / name, root / "src" / name, follow_symlinks=False)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(root / "dist"), str(root / "src")],
        capture_output=True, text=True,
    )  # fmt: skip
    wheels = list((root / "dist").glob("astrachaos-*.whl"))
    if built.returncode != 0 or not wheels:
        raise SystemExit(f"bench: building the wheel failed:\n{built.stdout}{built.stderr}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        if not any(name.endswith(".so") for name in wheel.namelist()):
            raise SystemExit(f"bench: the wheel holds no compiled module:\n{built.stderr}")
        wheel.extractall(root / "unpacked")
    return root / "unpacked"
