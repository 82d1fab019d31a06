"""Provision a node's runtime: a JDK and Cassandra's jars from Maven Central, cached per user."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import threading
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
# Maven in batch mode logs one line per artifact fetched: "Downloaded from central: URL (55 kB at …)".
_DOWNLOADED = re.compile(r"Downloaded from [^:]+: \S+ \((\d+(?:\.\d+)?) (B|kB|MB|GB)\b")
_UNIT = {"B": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3}


@dataclass(frozen=True)
class DownloadStatus:
    """How far the first download of a version's jars is: artifacts and bytes Maven fetched."""

    version: str
    artifacts: int
    bytes: int


DownloadCallback = Callable[[DownloadStatus], None]


def downloaded_bytes(line: str) -> int | None:
    """The size of the artifact a Maven "Downloaded from" line reports, else None."""
    match = _DOWNLOADED.search(_ANSI.sub("", line))
    if match is None:
        return None
    return int(float(match.group(1)) * _UNIT[match.group(2)])


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
        "-B",  # batch mode: one "Downloaded from" line per artifact, the progress we show
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


def ensure_jars(version: str, java: JavaHome, on_download: DownloadCallback | None = None) -> Path:
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
        report = on_download or (lambda status: None)
        report(DownloadStatus(version, 0, 0))
        _download(mvn, version, java, target, report)
    return target


def _download(
    mvn: str, version: str, java: JavaHome, target: Path, report: DownloadCallback
) -> None:
    work = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    try:
        pom = work / "pom.xml"
        pom.write_text(pom_text(version))
        out = work / "lib"
        returncode, output = _run_maven(maven_command(mvn, pom, out), java, version, report)
        if returncode != 0 or not (out / f"cassandra-all-{version}.jar").is_file():
            tail = "\n".join(_meaningful_lines(output)[-_TAIL_LINES:])
            raise EnvironmentProblem(
                f"could not download Apache Cassandra {version} from Maven Central "
                f"(mvn exit {returncode}). Last lines of its output:\n{tail}",
                hint="check that Maven Central is reachable (proxy: ~/.m2/settings.xml) "
                "and that the version exists",
            )
        # A rename is atomic: a half download is never seen under the final name.
        out.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run_maven(
    command: list[str], java: JavaHome, version: str, report: DownloadCallback
) -> tuple[int, str]:
    """Run Maven, reporting each artifact it fetches; its exit code and its whole output."""
    process = subprocess.Popen(
        command,
        env=java_env(java),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        process.kill()

    timer = threading.Timer(MAVEN_TIMEOUT_S, kill)
    timer.start()
    lines: list[str] = []
    artifacts = fetched = 0
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            size = downloaded_bytes(line)
            if size is not None:
                artifacts, fetched = artifacts + 1, fetched + size
                report(DownloadStatus(version, artifacts, fetched))
        returncode = process.wait()
    finally:
        timer.cancel()
    if timed_out.is_set():
        raise EnvironmentProblem(
            f"Maven did not finish downloading Cassandra {version} in {MAVEN_TIMEOUT_S} s",
            hint="check that Maven Central is reachable (proxy: ~/.m2/settings.xml)",
        )
    return returncode, "".join(lines)

def _meaningful_lines(output: str) -> list[str]:
    lines = (_ANSI.sub("", line).rstrip() for line in output.splitlines())
    return [line for line in lines if line and line != "[ERROR]"]


def prepare_runtime(version: str, on_download: DownloadCallback | None = None) -> Runtime:
    """Find Java 17 and make sure the jars of a version are cached."""
    java = find_java_home()
    return Runtime(java=java, lib=ensure_jars(version, java, on_download), version=version)
