"""Where each node's proxy listens: another loopback address, same port; and the driver's mapping."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from astrachaos.errors import EnvironmentProblem

PROXY_OFFSET = 100  # node 127.0.0.N → proxy 127.0.0.(100+N)


def loopback_address(host: str) -> ipaddress.IPv4Address:
    """`host` as an IPv4 loopback address; anything else is refused (the proxy is local only)."""
    try:
        address = ipaddress.IPv4Address("127.0.0.1" if host == "localhost" else host)
    except ValueError:
        raise EnvironmentProblem(
            f"the proxy injectors only reach loopback nodes given by address; {host!r} is not one",
            hint="target a local cluster (127.x.x.x contact points)",
        ) from None
    if not address.is_loopback:
        raise EnvironmentProblem(
            f"the proxy injectors only reach loopback nodes; {host} is not on 127.0.0.0/8",
            hint="target a local cluster (127.x.x.x contact points)",
        )
    return address


def _candidates(node: ipaddress.IPv4Address) -> Iterator[str]:
    _, b, c, d = node.packed
    if d + PROXY_OFFSET <= 254:
        yield f"127.{b}.{c}.{d + PROXY_OFFSET}"
    for step in range(1, 120):
        yield f"127.{(b + step) % 256}.{c}.{d}"


def _bindable(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=0.2):
        return False  # something answers there (a wildcard listener)
    return True


def allocate_proxy_addresses(targets: Sequence[str], port: int) -> dict[str, str]:
    """Node address → a free loopback address for its proxy on `port` (not any node's address)."""
    nodes = [loopback_address(t) for t in targets]
    taken = {str(n) for n in nodes}
    mapping: dict[str, str] = {}
    for node in nodes:
        for candidate in _candidates(node):
            if candidate not in taken and _bindable(candidate, port):
                mapping[str(node)] = candidate
                taken.add(candidate)
                break
        else:
            raise EnvironmentProblem(f"no free loopback address for the proxy of {node}:{port}")
    return mapping


def address_translator(mapping: Mapping[str, str]) -> Any:
    """A driver AddressTranslator sending each node's address to its proxy's."""
    from cassandra.policies import AddressTranslator

    class ProxyAddressTranslator(AddressTranslator):  # type: ignore[misc]
        """Maps node addresses (from system.local / system.peers) to proxy addresses."""

        def translate(self, addr: str) -> str:
            return dict(mapping).get(addr, addr)

    return ProxyAddressTranslator()
