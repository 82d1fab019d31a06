"""One local node: start, stop, kill, pause, resume, restart, readiness and nodetool."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable
from enum import Enum

from astrachaos.errors import EnvironmentProblem
from astrachaos.local.config import write_node_config
from astrachaos.local.launch import daemon_command, launch_detached, read_pid
from astrachaos.local.layout import NodeLayout
from astrachaos.local.nodetool import NodetoolResult, run_nodetool
from astrachaos.local.ports import check_ports_free
from astrachaos.local.process import (
    ProcessState,
    daemons_under,
    is_daemon_of,
    process_state,
    send,
    wait_gone,
    wait_state,
)
from astrachaos.local.provision import Runtime
from astrachaos.local.readiness import log_says_ready, log_size, log_tail, release_version
from astrachaos.local.spec import CQL_PORT, ClusterSpec, jmx_port

KILL_WAIT_S = 15.0
SIGNAL_WAIT_S = 10.0


class NodeState(Enum):
    """A node's state as status reports it."""

    UP = "up"
    STARTING = "starting"
    PAUSED = "paused"
    CQL_OFF = "cql off"
    DOWN = "down"


class StopOutcome(Enum):
    """How a stop ended."""

    STOPPED = "stopped"
    KILLED = "killed"
    NOT_RUNNING = "not running"


class LocalNode:
    """A Cassandra daemon on 127.0.0.N with its own directories, pid file and JMX port."""

    def __init__(
        self,
        spec: ClusterSpec,
        index: int,
        layout: NodeLayout,
        runtime: Callable[[], Runtime],
    ) -> None:
        self.spec = spec
        self.index = index
        self.layout = layout
        self._runtime = runtime
        self._log_offset = 0

    def __repr__(self) -> str:
        return f"LocalNode({self.spec.name}/{self.name} at {self.address})"

    @property
    def name(self) -> str:
        """node1, node2, ..."""
        return f"node{self.index + 1}"

    @property
    def address(self) -> str:
        """The address the node listens on."""
        return self.spec.addresses[self.index]

    @property
    def port(self) -> int:
        """The CQL native port."""
        return CQL_PORT

    @property
    def jmx_port(self) -> int:
        """The JMX port (bound to 127.0.0.1)."""
        return jmx_port(self.address)

    def pid(self) -> int | None:
        """The recorded pid if it is still this node's daemon and alive, else None."""
        pid = read_pid(self.layout.pid_file)
        if pid is None or not is_daemon_of(pid, self.layout.config_uri):
            return None
        return None if process_state(pid) is ProcessState.GONE else pid

    def _running_pid(self, action: str) -> int:
        pid = self.pid()
        if pid is None:
            raise EnvironmentProblem(
                f"cannot {action} {self.name} at {self.address}: it is not running"
            )
        return pid

    def cql_listening(self) -> bool:
        """True if something accepts TCP connections on the node's CQL port."""
        try:
            with socket.create_connection((self.address, self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def state(self) -> NodeState:
        """Up, starting, paused (SIGSTOP), CQL off (was up, e.g. disablebinary) or down."""
        pid = self.pid()
        if pid is None:
            return NodeState.DOWN
        if process_state(pid) is ProcessState.STOPPED:
            return NodeState.PAUSED
        if self.cql_listening():
            return NodeState.UP
        return NodeState.CQL_OFF if read_pid(self.layout.ready_file) == pid else NodeState.STARTING

    def start(self) -> int:
        """Start the daemon with this node's directories (no-op if running); return its pid."""
        running = self.pid()
        if running is not None:
            return running
        check_ports_free(self.address)
        runtime = self._runtime()
        write_node_config(self.spec, self.index, self.layout)
        self.layout.ready_file.unlink(missing_ok=True)
        self._log_offset = log_size(self.layout.system_log)
        command = daemon_command(runtime, self.address, self.spec.heap, self.layout)
        return launch_detached(command, runtime, self.layout)

    def launch_gone(self) -> bool:
        """True once the launched process has exited.

        Right after the launch the recorded pid may still be the detaching shell between its fork
        and the exec of java (its /proc cmdline is the shell's, or empty mid-exec): that process
        is alive and becoming the daemon, so it counts as starting, not as exited.
        """
        if self.pid() is not None:
            return False
        pid = read_pid(self.layout.pid_file)
        return pid is None or process_state(pid) is ProcessState.GONE

    def poll_ready(self) -> str | None:
        """One readiness check: the release version once CQL answers, None while starting."""
        if self.launch_gone():
            raise self._failure("exited while starting")
        if not log_says_ready(self.layout.system_log, self._log_offset):
            return None
        version = release_version(self.address, self.port, auth=self.spec.auth)
        pid = self.pid()
        if version is not None and pid is not None:
            # Remembered so that status can tell a node whose CQL was turned off from a starting one.
            self.layout.ready_file.write_text(f"{pid}\n")
        return version

    def wait_ready(self, timeout_s: float = 180.0) -> str:
        """Wait until the node answers CQL; return its release version."""
        deadline = time.monotonic() + timeout_s
        while True:
            version = self.poll_ready()
            if version is not None:
                return version
            if time.monotonic() >= deadline:
                raise self.not_ready_error(timeout_s)
            time.sleep(0.5)

    def not_ready_error(self, timeout_s: float) -> EnvironmentProblem:
        """The error for a node that did not come up in time."""
        return self._failure(f"did not come up within {timeout_s:.0f} s")

    def _failure(self, what: str) -> EnvironmentProblem:
        log = self.layout.system_log
        tail = log_tail(log)
        if not tail:
            log = self.layout.stdout_log
            tail = log_tail(log)
        shown = "\n".join(tail) if tail else "(the log is empty)"
        return EnvironmentProblem(
            f"{self.spec.name}/{self.name} at {self.address} {what}. Last lines of {log}:\n{shown}",
            hint=f"see {self.layout.logs}; `astrachaos local down --name {self.spec.name}` stops "
            "what is left",
        )

    def daemon_pids(self) -> list[int]:
        """Every live daemon of this node: the recorded pid and any other using its config."""
        pids = daemons_under(self.layout.root)
        recorded = self.pid()
        if recorded is not None and recorded not in pids:
            pids.append(recorded)
        return [pid for pid in pids if is_daemon_of(pid, self.layout.config_uri)]

    def request_stop(self) -> list[int]:
        """Ask the daemon to shut down (SIGTERM, and SIGCONT if paused); return its pids."""
        pids = self.daemon_pids()
        for pid in pids:
            send(pid, signal.SIGTERM)
            send(pid, signal.SIGCONT)
        return pids

    def wait_stopped(self, pids: list[int], timeout_s: float) -> StopOutcome:
        """Wait for a requested stop; SIGKILL what outlives the timeout."""
        if not pids:
            return StopOutcome.NOT_RUNNING
        deadline = time.monotonic() + timeout_s
        outcome = StopOutcome.STOPPED
        for pid in pids:
            if wait_gone(pid, max(0.0, deadline - time.monotonic())):
                continue
            if is_daemon_of(pid, self.layout.config_uri):
                send(pid, signal.SIGKILL)
            wait_gone(pid, KILL_WAIT_S)
            outcome = StopOutcome.KILLED
        return outcome

    def stop(self, timeout_s: float = 60.0) -> StopOutcome:
        """Graceful stop (SIGTERM), then SIGKILL after the timeout."""
        return self.wait_stopped(self.request_stop(), timeout_s)

    def kill(self) -> None:
        """Crash the node: SIGKILL, and wait until the process is gone."""
        pid = self._running_pid("kill")
        send(pid, signal.SIGKILL)
        if not wait_gone(pid, KILL_WAIT_S):
            raise EnvironmentProblem(f"{self.name} (pid {pid}) survived SIGKILL")

    def pause(self) -> None:
        """Freeze the node with SIGSTOP, returning once it is stopped; it keeps its sockets."""
        self._signal_and_wait("pause", signal.SIGSTOP, ProcessState.STOPPED)

    def resume(self) -> None:
        """Thaw a paused node with SIGCONT, returning once it runs again."""
        self._signal_and_wait("resume", signal.SIGCONT, ProcessState.RUNNING)

    def _signal_and_wait(self, action: str, sig: signal.Signals, wanted: ProcessState) -> None:
        pid = self._running_pid(action)
        send(pid, sig)
        if not wait_state(pid, wanted, SIGNAL_WAIT_S):
            raise EnvironmentProblem(
                f"cannot {action} {self.name} (pid {pid}): still {process_state(pid).value} "
                f"{SIGNAL_WAIT_S:.0f} s after {sig.name}"
            )

    def restart(self, timeout_s: float = 180.0) -> str:
        """Stop gracefully, start with the same directories, wait; return the release version."""
        self.stop()
        self.start()
        return self.wait_ready(timeout_s)

    def nodetool(self, args: list[str], *, check: bool = True) -> NodetoolResult:
        """Run nodetool against this node's JMX port."""
        logback = self.layout.tools_logback_xml
        return run_nodetool(
            self._runtime(),
            self.jmx_port,
            args,
            logback=logback if logback.is_file() else None,
            check=check,
        )

    def log_tail(self, lines: int = 15) -> list[str]:
        """The last lines of the node's system.log."""
        return log_tail(self.layout.system_log, lines)
