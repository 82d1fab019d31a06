"""Node processes as the kernel sees them: is a pid one of our daemons, is it paused, signal it."""

from __future__ import annotations

import os
import signal
import time
from enum import Enum
from pathlib import Path

import psutil

DAEMON_CLASS = "org.apache.cassandra.service.CassandraDaemon"
_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)


class ProcessState(Enum):
    """What the kernel says about a process."""

    RUNNING = "running"
    STOPPED = "stopped"
    GONE = "gone"


def cmdline(pid: int) -> list[str]:
    """The argument vector of a process; empty if it is gone or a zombie."""
    try:
        return psutil.Process(pid).cmdline()
    except _GONE:
        return []


def is_daemon_of(pid: int, config_uri: str) -> bool:
    """True if pid is a CassandraDaemon started with exactly this cassandra.yaml."""
    argv = cmdline(pid)
    return DAEMON_CLASS in argv and f"-Dcassandra.config={config_uri}" in argv


def process_state(pid: int) -> ProcessState:
    """Running, stopped (SIGSTOP) or gone (absent, or a fully exited zombie nobody reaped)."""
    try:
        process = psutil.Process(pid)
        status = process.status()
    except _GONE:
        return ProcessState.GONE
    if status in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
        # A dead main thread leaves the other threads exiting (and holding the sockets) a while.
        return ProcessState.GONE if _live_threads(process) <= 1 else ProcessState.RUNNING
    if status in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP):
        return ProcessState.STOPPED
    return ProcessState.RUNNING


def _live_threads(process: psutil.Process) -> int:
    try:
        return process.num_threads()
    except _GONE:
        return 0


def send(pid: int, sig: signal.Signals) -> bool:
    """Send a signal; False if the process is already gone."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def wait_state(pid: int, wanted: ProcessState, timeout_s: float) -> bool:
    """Wait until /proc shows a state (signals act asynchronously); False on timeout."""
    deadline = time.monotonic() + timeout_s
    while process_state(pid) is not wanted:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def wait_gone(pid: int, timeout_s: float) -> bool:
    """Wait until the process is gone; False if it is still there after the timeout."""
    deadline = time.monotonic() + timeout_s
    while process_state(pid) is not ProcessState.GONE:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def daemons_under(directory: Path) -> list[int]:
    """Pids of every CassandraDaemon whose configuration lives under a directory."""
    marker = f"-Dcassandra.config={directory.as_uri()}/"
    found = []
    for process in psutil.process_iter(["cmdline"]):
        argv = process.info["cmdline"] or []
        if DAEMON_CLASS in argv and any(arg.startswith(marker) for arg in argv):
            found.append(process.pid)
    return found
