"""Run nodetool against a node's JMX port, without Cassandra's shell scripts."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from astrachaos.errors import EnvironmentProblem
from astrachaos.local.java import java_env, module_flags
from astrachaos.local.ports import JMX_ADDRESS
from astrachaos.local.provision import Runtime

NODETOOL_CLASS = "org.apache.cassandra.tools.NodeTool"
NODETOOL_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class NodetoolResult:
    """What one nodetool call printed and returned."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """True if nodetool exited 0."""
        return self.returncode == 0


def nodetool_command(
    runtime: Runtime, jmx_port: int, args: list[str], logback: Path | None = None
) -> list[str]:
    """The java command line of `nodetool -h 127.0.0.1 -p JMXPORT ARGS`."""
    logging = [f"-Dlogback.configurationFile={logback}"] if logback else []
    return [
        str(runtime.java.java),
        "-Xmx128m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        *module_flags(runtime.java.major),
        *logging,
        "-cp",
        runtime.classpath,
        NODETOOL_CLASS,
        "-h",
        JMX_ADDRESS,
        "-p",
        str(jmx_port),
        *args,
    ]


def run_nodetool(
    runtime: Runtime,
    jmx_port: int,
    args: list[str],
    *,
    logback: Path | None = None,
    timeout_s: float = NODETOOL_TIMEOUT_S,
    check: bool = True,
) -> NodetoolResult:
    """Run nodetool; with check, a failure becomes an EnvironmentProblem carrying its output."""
    try:
        done = subprocess.run(
            nodetool_command(runtime, jmx_port, args, logback),
            env=java_env(runtime.java),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise EnvironmentProblem(
            f"nodetool {' '.join(args)} did not finish in {timeout_s:.0f} s (JMX port {jmx_port})"
        ) from None
    result = NodetoolResult(tuple(args), done.returncode, done.stdout, done.stderr)
    if check and not result.ok:
        output = (result.stderr.strip() or result.stdout.strip()).splitlines()[-10:]
        raise EnvironmentProblem(
            f"nodetool {' '.join(args)} failed (exit {result.returncode}) on JMX port "
            f"{jmx_port}:\n" + "\n".join(output),
            hint="check the arguments (`nodetool help`) and that the node is up "
            "(`astrachaos local status`)",
        )
    return result
