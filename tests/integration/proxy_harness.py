"""Running `astrachaos proxy` as a user does (a subprocess of the real CLI), and third-party clients.

The Java client is compiled once per source/pom version under ~/.cache/astrachaos/java-client:
Maven resolves the driver's jars there and javac compiles the class there; later runs reuse both.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.shipped import astrachaos

HERE = Path(__file__).parent
JAVA_SOURCE = HERE / "java_client"
CACHE = Path(os.environ.get("ASTRACHAOS_CACHE", Path.home() / ".cache" / "astrachaos"))
JAVA_HOME = "/usr/lib/jvm/java-17-openjdk-amd64"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def listening(host: str, port: int) -> bool:
    """Whether something accepts connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def java_client() -> str:
    """The classpath of the compiled uploader (resolved and compiled on first use, then cached)."""
    if shutil.which("mvn") is None or shutil.which("javac") is None:
        pytest.skip("Maven and a JDK are needed for the Java client")
    sources = [JAVA_SOURCE / "pom.xml", JAVA_SOURCE / "Uploader.java"]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    home = CACHE / "java-client" / digest
    lib, classes = home / "lib", home / "classes"
    env = {**os.environ, "JAVA_HOME": JAVA_HOME}
    if not (home / ".resolved").exists():
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(JAVA_SOURCE / "pom.xml", home / "pom.xml")
        subprocess.run(["mvn", "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={lib}"],
                       cwd=home, env=env, check=True, timeout=600)  # fmt: skip
        (home / ".resolved").touch()
    if not (classes / "Uploader.class").exists():
        classes.mkdir(exist_ok=True)
        subprocess.run([f"{JAVA_HOME}/bin/javac", "-cp", f"{lib}/*", "-d", str(classes),
                        str(JAVA_SOURCE / "Uploader.java")], env=env, check=True, timeout=300)  # fmt: skip
    return f"{classes}:{lib}/*"


NODE_SOURCE = HERE / "node_client" / "uploader.js"
NODE_DRIVER = "cassandra-driver@4.10.0"  # the DataStax Node.js driver: protocol v4, no compression


def node_client() -> Path:
    """A directory whose node_modules holds the Node.js driver (npm-installed on first use, cached)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are needed for the Node client")
    home = CACHE / "node-client" / NODE_DRIVER.replace("@", "-")
    if not (home / "node_modules" / "cassandra-driver" / "package.json").exists():
        home.mkdir(parents=True, exist_ok=True)
        install = ["npm", "install", "-q", "--no-audit", "--no-fund", "--prefix", str(home), NODE_DRIVER]
        subprocess.run(install, check=True, timeout=600, capture_output=True)
    return home


def run_node_uploader(
    home: Path, host: str, port: int, keyspace: str, table: str, records: int, app_log: Path
) -> subprocess.Popen[str]:
    """Start the Node.js writer against host:port (returns the running process)."""
    env = {**os.environ, "NODE_PATH": str(home / "node_modules")}
    command = ["node", str(NODE_SOURCE), host, str(port), keyspace, table, str(records), str(app_log)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def run_java_uploader(
    classpath: str, host: str, port: int, keyspace: str, table: str, records: int, batch: int,
    app_log: Path, linger_s: int, burst: bool = False, consistency: str = "LOCAL_ONE",
    compression: str = "none", protocol: str | None = None,
) -> subprocess.Popen[str]:  # fmt: skip
    """Start the Java uploader against host:port (returns the running process)."""
    options = [f"-Dconsistency={consistency}", f"-Dcompression={compression}"]
    options += [f"-Dprotocol={protocol}"] if protocol else []
    command = [f"{JAVA_HOME}/bin/java", *options, "-cp", classpath, "Uploader",
               host, str(port), keyspace,
               table, str(records), str(batch), str(app_log), str(linger_s)]  # fmt: skip
    command += ["burst"] if burst else []
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@dataclass
class RunningProxy:
    """A proxy subprocess: where it listens and its control API."""

    process: subprocess.Popen[str]
    listen: list[tuple[str, int]]
    api: str
    output: list[str]

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`astrachaos proxy ctl ARGS --api API`."""
        return subprocess.run([*astrachaos(), "proxy", "ctl", *args, "--api", self.api],
                              capture_output=True, text=True, timeout=30)  # fmt: skip

    def replayed_stats(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """`ctl stats` once the capture has caught up (its tape replayed: the clients paused)."""
        deadline = time.monotonic() + timeout_s
        while True:
            stats: dict[str, Any] = json.loads(self.ctl("stats").stdout)
            if stats.get("capture_backlog_bytes", 0) == 0 or time.monotonic() > deadline:
                return stats
            time.sleep(0.2)

    def interrupt(self) -> int:
        """Ctrl-C; returns the exit code once the proxy has rolled back and exited."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)


@contextmanager
def running_proxy(
    args: Sequence[str],
    listen_host: str = "127.0.0.1",
    program: Sequence[str] | None = None,
    cwd: Path | None = None,
) -> Iterator[RunningProxy]:
    """Start `astrachaos proxy ARGS` on free ports and wait until it prints its control API.

    `program`: the astrachaos to run (default `astrachaos()`: as shipped), from `cwd`.
    """
    listen_port, api_port = free_port(listen_host), free_port()
    api = f"127.0.0.1:{api_port}"
    command = [*(program or astrachaos()), "proxy", *args, "--listen", f"{listen_host}:{listen_port}",
               "--api", api]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd)
    assert process.stdout is not None
    lines: list[str] = []
    listen: list[tuple[str, int]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("listening "):
            host, port = line.split()[1].rsplit(":", 1)
            listen.append((host, int(port)))
        if line.startswith("control API"):
            break
    if not listen:
        process.kill()
        raise AssertionError("the proxy did not start:\n" + "".join(lines) + (process.stdout.read() or ""))
    proxy = RunningProxy(process, listen, api, lines)

    def drain() -> None:  # keep the pipe empty so the proxy never blocks on its output
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)

    threading.Thread(target=drain, daemon=True).start()
    try:
        yield proxy
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def tcp_peers(pid: int) -> set[tuple[str, int]]:
    """The remote (address, port) of every established IPv4 TCP connection of process `pid`."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    peers = set()
    lines = (
        Path("/proc/net/tcp").read_text().splitlines()[1:]
        + Path("/proc/net/tcp6").read_text().splitlines()[1:]
    )
    for line in lines:  # a JVM's sockets are IPv6 ones with IPv4-mapped addresses: tcp6
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        if inode in inodes and state == "01":  # ESTABLISHED
            address, port = remote.split(":")
            octets = bytes.fromhex(address[-8:])[::-1]  # IPv4, or the IPv4 of ::ffff:a.b.c.d
            peers.add((".".join(str(b) for b in octets), int(port, 16)))
    return peers
