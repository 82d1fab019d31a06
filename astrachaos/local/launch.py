"""The daemon's java command line, and launching it detached from astrachaos."""

from __future__ import annotations

import subprocess
from pathlib import Path

from astrachaos.errors import EnvironmentProblem
from astrachaos.local.java import java_env, module_flags
from astrachaos.local.layout import NodeLayout
from astrachaos.local.process import DAEMON_CLASS
from astrachaos.local.provision import Runtime
from astrachaos.local.spec import jmx_port

RING_DELAY_MS = 1000

# Background the JVM from a throw-away shell so that it is never our child: it outlives the
# astrachaos process that started it, and any later process can stop it by its recorded pid.
_DETACH = 'exec 0</dev/null; "$@" & echo $! > "$PIDFILE"'


def daemon_command(runtime: Runtime, address: str, heap_mb: int, layout: NodeLayout) -> list[str]:
    """The full java command line of one node."""
    jamm = sorted(runtime.lib.glob("jamm-*.jar"))
    return [
        str(runtime.java.java),
        "-ea",
        f"-Xms{heap_mb}m",
        f"-Xmx{heap_mb}m",
        "-Xss512k",
        "-XX:+UseG1GC",
        "-XX:ParallelGCThreads=1",
        "-XX:ConcGCThreads=1",
        "-XX:+PerfDisableSharedMem",
        "-XX:+ExitOnOutOfMemoryError",
        *([f"-javaagent:{jamm[-1]}"] if jamm else []),
        *module_flags(runtime.java.major),
        "-Djava.net.preferIPv4Stack=true",
        "-Dchronicle.analytics.disable=true",
        "-Dcassandra-foreground=yes",
        f"-Dcassandra.config={layout.config_uri}",
        f"-Dcassandra.storagedir={layout.root}",
        f"-Dcassandra.logdir={layout.logs}",
        f"-Dlogback.configurationFile={layout.logback_xml}",
        f"-Dcassandra-pidfile={layout.pid_file}",
        f"-Dcassandra.triggers_dir={layout.triggers}",
        f"-Dcassandra.jmx.local.port={jmx_port(address)}",
        "-Djava.rmi.server.hostname=127.0.0.1",
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        f"-Dcassandra.ring_delay_ms={RING_DELAY_MS}",
        "-Dcassandra.superuser_setup_delay_ms=0",
        "-cp",
        runtime.classpath,
        DAEMON_CLASS,
    ]


def launch_detached(command: list[str], runtime: Runtime, layout: NodeLayout) -> int:
    """Start a command in its own session, output to logs/stdout.log; return its pid."""
    layout.pid_file.unlink(missing_ok=True)
    env = java_env(runtime.java)
    env["PIDFILE"] = str(layout.pid_file)
    with open(layout.stdout_log, "ab") as out:
        subprocess.run(
            ["/bin/sh", "-c", _DETACH, "astrachaos-launch", *command],
            env=env,
            cwd=layout.root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            check=True,
        )
    return read_pid(layout.pid_file, required=True) or 0


def read_pid(pid_file: Path, *, required: bool = False) -> int | None:
    """The pid recorded in a pid file, or None."""
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        if required:
            raise EnvironmentProblem(
                f"could not record the pid of the node in {pid_file}"
            ) from None
        return None
