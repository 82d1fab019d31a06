"""Check, before starting a node, that the ports it will bind are free."""

from __future__ import annotations

import errno
import socket

from astrachaos.errors import EnvironmentProblem
from astrachaos.local.spec import CQL_PORT, STORAGE_PORT, jmx_port

JMX_ADDRESS = "127.0.0.1"


def port_is_free(address: str, port: int) -> bool:
    """True if a listening socket could bind address:port now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Like the JVM does: connections left in TIME_WAIT by a stopped node must not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as error:
            if error.errno == errno.EADDRNOTAVAIL:
                raise EnvironmentProblem(
                    f"address {address} is not available on this machine",
                    hint="on Linux all of 127.0.0.0/8 is loopback; on macOS add an alias: "
                    f"sudo ifconfig lo0 alias {address} up",
                ) from None
            return False
    return True


def node_ports(address: str) -> list[tuple[str, int, str]]:
    """Every (address, port, purpose) a node at this address binds."""
    return [
        (address, CQL_PORT, "CQL native transport"),
        (address, STORAGE_PORT, "storage (internode)"),
        (JMX_ADDRESS, jmx_port(address), "JMX"),
    ]


def check_ports_free(address: str) -> None:
    """Raise an EnvironmentProblem naming the first port of a node that is already taken."""
    for host, port, purpose in node_ports(address):
        if not port_is_free(host, port):
            raise EnvironmentProblem(
                f"port {port} on {host} ({purpose} of the node at {address}) is already in use",
                hint=f"find the owner with `ss -ltnp 'sport = :{port}'`, stop it, or start the "
                "cluster on other addresses (--first-address)",
            )
