"""The HTTPS metadata service: `GET /metadata` answers the contact info the driver asks for."""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _MetadataHandler(BaseHTTPRequestHandler):
    server: MetadataServer

    def do_GET(self) -> None:
        if self.path != "/metadata":
            self.send_error(404)
            return
        body = json.dumps(self.server.document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # Quiet: a test run's stderr is checked for secrets and should hold only astrachaos output.
        pass


class MetadataServer(ThreadingHTTPServer):
    """Mutual-TLS HTTP server on a loopback address, serving one JSON document in a thread."""

    daemon_threads = True

    def __init__(self, address: str, context: ssl.SSLContext, document: dict[str, object]) -> None:
        super().__init__((address, 0), _MetadataHandler)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.document = document
        self._thread = threading.Thread(target=self.serve_forever, name="standin-metadata")

    @property
    def port(self) -> int:
        """The port the service listens on (chosen by the OS)."""
        return int(self.server_address[1])

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()


def metadata_document(sni_proxy: str, host_ids: list[str], local_dc: str) -> dict[str, object]:
    """The fields `cassandra.datastax.cloud.parse_metadata_info` reads."""
    return {
        "version": 1,
        "region": "standin",
        "contact_info": {
            "type": "sni_proxy",
            "local_dc": local_dc,
            "contact_points": host_ids,
            "sni_proxy_address": sni_proxy,
        },
    }
