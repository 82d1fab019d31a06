"""Provision a node's runtime: a JDK and Cassandra's jars from Maven Central, cached per user."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from astrachaos.errors import EnvironmentProblem
from astrachaos.local.java import JavaHome, find_java_home, java_env
from astrachaos.local.layout import jar_dir

MAVEN_TIMEOUT_S = 1200
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TAIL_LINES = 15


@dataclass(frozen=True)
class Runtime:
    """What it takes to run a node or nodetool: a JDK and a directory of jars."""

    java: JavaHome
    lib: Path
    version: str

    @property
    def classpath(self) -> str:
        """The classpath wildcard of the jar directory."""
        return str(self.lib / "*")


def cached_jars(version: str) -> Path | None:
    """The jar directory of a version if a complete download is cached, else None."""
    lib = jar_dir(version)
    return lib if (lib / f"cassandra-all-{version}.jar").is_file() else None


def pom_text(version: str) -> str:
    """The one-dependency pom that resolves cassandra-all at a version."""
    template = resources.files("astrachaos.local").joinpath("pom.xml").read_text()
    return template.replace("@CASSANDRA_VERSION@", version)


def maven_command(mvn: str, pom: Path, out: Path) -> list[str]:
    """The mvn invocation copying every runtime jar into out; honours $ASTRACHAOS_MAVEN_REPO."""
    command = [
        mvn,
        "-B",
        "-q",
        "-Dstyle.color=never",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={out}",
    ]
    repo = os.environ.get("ASTRACHAOS_MAVEN_REPO")
    if repo:
        command.append(f"-Dmaven.repo.local={Path(repo).expanduser().absolute()}")
    return command


def find_maven() -> str:
    """The mvn executable, or an EnvironmentProblem saying how to install it."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise EnvironmentProblem(
            "Maven (mvn) is not installed; astrachaos needs it once to fetch Cassandra's jars",
            hint="install it (Debian/Ubuntu: apt-get install maven) and run again",
        )
    return mvn


def ensure_jars(
    version: str, java: JavaHome, on_download: Callable[[], None] | None = None
) -> Path:
    """Return the cached jar directory of a version, downloading it first if needed."""
    lib = cached_jars(version)
    if lib is not None:
        return lib
    mvn = find_maven()
    target = jar_dir(version)
    target.parent.mkdir(parents=True, exist_ok=True)
    # One download at a time per version, even across processes; the loser reuses the winner's.
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lib = cached_jars(version)
        if lib is not None:
            return lib
        if on_download is not None:
            on_download()
        _download(mvn, version, java, target)
    return target


def _download(mvn: str, version: str, java: JavaHome, target: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    try:
        pom = work / "pom.xml"
        pom.write_text(pom_text(version))
        out = work / "lib"
        try:
            done = subprocess.run(
                maven_command(mvn, pom, out),
                env=java_env(java),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=MAVEN_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise EnvironmentProblem(
                f"Maven did not finish downloading Cassandra {version} in {MAVEN_TIMEOUT_S} s",
                hint="check that Maven Central is reachable (proxy: ~/.m2/settings.xml)",
            ) from None
        if done.returncode != 0 or not (out / f"cassandra-all-{version}.jar").is_file():
            tail = "\n".join(_meaningful_lines(done.stdout)[-_TAIL_LINES:])
            raise EnvironmentProblem(
                f"could not download Apache Cassandra {version} from Maven Central "
                f"(mvn exit {done.returncode}). Last lines of its output:\n{tail}",
                hint="check that Maven Central is reachable (proxy: ~/.m2/settings.xml) "
                "and that the version exists",
            )
        # A rename is atomic: a half download is never seen under the final name.
        out.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _meaningful_lines(output: str) -> list[str]:
    lines = (_ANSI.sub("", line).rstrip() for line in output.splitlines())
    return [line for line in lines if line and line != "[ERROR]"]


def prepare_runtime(version: str, on_download: Callable[[], None] | None = None) -> Runtime:
    """Find Java 17 and make sure the jars of a version are cached."""
    java = find_java_home()
    return Runtime(java=java, lib=ensure_jars(version, java, on_download), version=version)
