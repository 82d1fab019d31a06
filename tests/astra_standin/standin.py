"""An Astra stand-in on loopback: bundle, HTTPS metadata service and SNI proxy in front of real nodes."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping
from pathlib import Path

from tests.astra_standin.bundle import bundle_config, write_bundle
from tests.astra_standin.certs import StandinPki, make_pki
from tests.astra_standin.metadata import MetadataServer, metadata_document
from tests.astra_standin.sniproxy import SniProxy

FRONT_ADDRESS = "127.0.0.30"  # the proxy and metadata service; the nodes live elsewhere


def _server_context(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    # Mutual TLS, as the bundle's client certificate implies: no valid client cert, no entry.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.load_verify_locations(ca)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _closed_port(address: str) -> int:
    # A port nothing listens on: bind one, note it, close it.
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


class AstraStandin:
    """What the driver's `cloud=` path talks to, served locally for the nodes in `routes`."""

    def __init__(
        self,
        workdir: Path,
        routes: Mapping[str, tuple[str, int]],
        keyspace: str,
        local_dc: str,
    ) -> None:
        self.workdir = workdir
        self.keyspace = keyspace
        self.local_dc = local_dc
        self.host_ids = list(routes)
        self.pki: StandinPki = make_pki(FRONT_ADDRESS, self.host_ids)
        ca, cert, key = self.pki.write_server_files(workdir / "server")
        self.proxy = SniProxy(FRONT_ADDRESS, _server_context(ca, cert, key), routes)
        self._metadata_context = _server_context(ca, cert, key)
        self.metadata: MetadataServer | None = None

    def start(self) -> None:
        """Start the proxy, then the metadata service that points at it."""
        self.proxy.start()
        document = metadata_document(
            f"{FRONT_ADDRESS}:{self.proxy.port}", self.host_ids, self.local_dc
        )
        self.metadata = MetadataServer(FRONT_ADDRESS, self._metadata_context, document)
        self.metadata.start()

    def stop(self) -> None:
        """Stop both servers."""
        if self.metadata is not None:
            self.metadata.stop()
        self.proxy.stop()

    @property
    def metadata_url(self) -> str:
        """Where the driver fetches the contact info."""
        assert self.metadata is not None
        return f"https://{FRONT_ADDRESS}:{self.metadata.port}/metadata"

    def bundle(self, name: str = "secure-connect-standin.zip") -> Path:
        """A good bundle: the metadata service's address, the CA and a valid client certificate."""
        return self._bundle(name)

    def bundle_without(self, *files: str) -> Path:
        """A zip that lacks some of config.json, ca.crt, cert, key."""
        return self._bundle(f"without-{'-'.join(files)}.zip", omit=files)

    def bundle_with_expired_cert(self) -> Path:
        """A bundle whose client certificate expired nine days ago (a stale download)."""
        return self._bundle("expired-cert.zip", expired=True)

    def bundle_with_unreachable_metadata(self) -> Path:
        """A bundle whose metadata service address has nothing listening."""
        return self._bundle("unreachable.zip", port=_closed_port(FRONT_ADDRESS))

    def not_a_zip(self) -> Path:
        """A file named like a bundle that is not a zip (a truncated or HTML download)."""
        path = self.workdir / "bundles" / "not-a-zip.zip"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("<html>Sign in to continue</html>\n")
        return path

    def _bundle(
        self,
        name: str,
        omit: tuple[str, ...] = (),
        expired: bool = False,
        port: int | None = None,
    ) -> Path:
        assert self.metadata is not None, "start() first"
        config = bundle_config(
            FRONT_ADDRESS,
            self.metadata.port if port is None else port,
            self.keyspace,
            self.local_dc,
        )
        client = self.pki.expired_client if expired else self.pki.client
        return write_bundle(self.workdir / "bundles" / name, config, self.pki.ca.cert, client, omit)
