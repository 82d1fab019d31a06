"""Find a JDK that runs Cassandra 5.0 (17, else 11) and the module flags Java 17 needs."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from astrachaos.errors import EnvironmentProblem

SUPPORTED_MAJORS = (17, 11)
"""Cassandra 5.0 runs on 11 and 17, preferably 17; newer JDKs fail its startup checks."""

SEARCH_ROOTS = (
    Path("/usr/lib/jvm"),
    Path("/usr/lib64/jvm"),
    Path("/Library/Java/JavaVirtualMachines"),
)

# From Cassandra's conf/jvm17-server.options: the daemon reaches into these JDK internals.
_ADD_EXPORTS = (
    "java.base/jdk.internal.misc",
    "java.management.rmi/com.sun.jmx.remote.internal.rmi",
    "java.rmi/sun.rmi.registry",
    "java.rmi/sun.rmi.server",
    "java.sql/java.sql",
    "java.base/java.lang.ref",
    "jdk.unsupported/sun.misc",
    "jdk.compiler/com.sun.tools.javac.file",
    "jdk.attach/sun.tools.attach",
)
_ADD_OPENS = (
    "java.base/java.lang.module",
    "java.base/jdk.internal.loader",
    "java.base/jdk.internal.ref",
    "java.base/jdk.internal.reflect",
    "java.base/jdk.internal.math",
    "java.base/jdk.internal.module",
    "java.base/jdk.internal.util.jar",
    "jdk.management/com.sun.management.internal",
    "java.base/sun.nio.ch",
    "java.base/java.io",
    "java.base/java.lang.reflect",
    "jdk.compiler/com.sun.tools.javac",
    "java.base/java.lang",
    "java.base/java.util",
    "java.base/java.nio",
)

_JAVA_VERSION = re.compile(r'^JAVA_VERSION="(?:1\.)?(\d+)', re.MULTILINE)


@dataclass(frozen=True)
class JavaHome:
    """A JDK installation and its major version."""

    path: Path
    major: int

    @property
    def java(self) -> Path:
        """The java launcher."""
        return self.path / "bin" / "java"


def module_flags(major: int) -> list[str]:
    """The --add-exports/--add-opens flags Cassandra needs on Java 17 (none on 11)."""
    if major < 17:
        return []
    flags = ["-Djdk.attach.allowAttachSelf=true", "-Dio.netty.tryReflectionSetAccessible=true"]
    flags += [f"--add-exports={module}=ALL-UNNAMED" for module in _ADD_EXPORTS]
    flags += [f"--add-opens={module}=ALL-UNNAMED" for module in _ADD_OPENS]
    return flags


def java_major(home: Path) -> int | None:
    """The major version of the JDK at home, read from its `release` file; None if not a JDK."""
    release = home / "release"
    if not (home / "bin" / "java").is_file() or not release.is_file():
        return None
    match = _JAVA_VERSION.search(release.read_text(errors="replace"))
    return int(match.group(1)) if match else None


def _candidates(roots: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        if not root.is_dir():
            continue
        for entry in sorted(root.iterdir()):
            mac_home = entry / "Contents" / "Home"
            found.append(mac_home if mac_home.is_dir() else entry)
    return found


def find_java_home(
    env: Mapping[str, str] | None = None, roots: Iterable[Path] = SEARCH_ROOTS
) -> JavaHome:
    """$JAVA_HOME if it is a 17 (or 11), else the best JDK under the usual roots; 17 first."""
    env = os.environ if env is None else env
    explicit = env.get("JAVA_HOME")
    if explicit:
        major = java_major(Path(explicit))
        if major in SUPPORTED_MAJORS:
            return JavaHome(Path(explicit).absolute(), major)
    seen: dict[Path, JavaHome] = {}
    for home in _candidates(roots):
        major = java_major(home)
        if major in SUPPORTED_MAJORS:
            seen.setdefault(home.resolve(), JavaHome(home.resolve(), major))
    for wanted in SUPPORTED_MAJORS:
        for candidate in seen.values():
            if candidate.major == wanted:
                return candidate
    looked = ", ".join(str(root) for root in roots)
    ignored = f" ($JAVA_HOME={explicit} is not a JDK 17 or 11)" if explicit else ""
    raise EnvironmentProblem(
        f"no JDK 17 found{ignored}; looked under {looked}",
        hint="install one (Debian/Ubuntu: apt-get install openjdk-17-jdk-headless) "
        "or set JAVA_HOME to a JDK 17",
    )


def java_env(home: JavaHome, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment with JAVA_HOME pinned and its bin first on PATH (for java and mvn)."""
    env = dict(os.environ if base is None else base)
    env["JAVA_HOME"] = str(home.path)
    env["PATH"] = f"{home.path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env
