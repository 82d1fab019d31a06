"""The proxy's control API (Toxiproxy's port by default): faults and statistics as JSON over HTTP.

GET /faults · POST /faults (one injector: the scenario's YAML fields as JSON, optional `label`)
· DELETE /faults/{label} · POST /reset · GET /stats. Errors answer 4xx with {"error": ...}.
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from astrachaos.errors import AstrachaosError
from astrachaos.proxy.server import Address
from astrachaos.standalone.service import StandaloneProxy

log = logging.getLogger(__name__)


class ControlApi:
    """An HTTP server thread in front of one StandaloneProxy."""

    def __init__(self, proxy: StandaloneProxy, address: Address) -> None:
        handler = type("Handler", (_Handler,), {"proxy": proxy})
        try:
            self._server = ThreadingHTTPServer(address, handler)
        except OSError as error:
            from astrachaos.errors import EnvironmentProblem

            raise EnvironmentProblem(
                f"the control API cannot listen on {address[0]}:{address[1]}: {error}"
            ) from None
        self._server.daemon_threads = True
        self.address = (address[0], self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="proxy-api", daemon=True)

    def start(self) -> None:
        """Serve requests from now on."""
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    proxy: StandaloneProxy

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/faults":
            self._send(HTTPStatus.OK, self.proxy.faults())
        elif self.path.rstrip("/") == "/stats":
            self._send(HTTPStatus.OK, self.proxy.stats())
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such resource {self.path}"})

    def do_POST(self) -> None:
        path = self.path.rstrip("/")
        if path == "/reset":
            self._act(lambda: {"removed": self.proxy.reset()})
        elif path == "/faults":
            body = self._json()
            if body is not None:
                self._act(lambda: {"label": self.proxy.add_fault(body)}, HTTPStatus.CREATED)
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such resource {self.path}"})

    def do_DELETE(self) -> None:
        prefix = "/faults/"
        if not self.path.startswith(prefix):
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such resource {self.path}"})
            return
        label = unquote(self.path[len(prefix) :].rstrip("/"))
        if label not in {f["label"] for f in self.proxy.faults()}:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no fault named {label!r}"})
            return

        def remove() -> dict[str, Any]:
            self.proxy.remove_fault(label)
            return {"removed": label, "rolled_back": True}

        self._act(remove)

    def _json(self) -> dict[str, Any] | None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError as error:
            self._send(HTTPStatus.BAD_REQUEST, {"error": f"not JSON: {error}"})
            return None
        if not isinstance(body, dict):
            self._send(HTTPStatus.BAD_REQUEST, {"error": "expected one injector as a JSON object"})
            return None
        return body

    def _act(self, action: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        try:
            result = action()
        except AstrachaosError as error:
            self._send(HTTPStatus.BAD_REQUEST, {"error": error.message})
            return
        except Exception as error:  # the proxy keeps running; the caller learns why
            log.exception("control API request failed")
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(error).__name__}: {error}"})
            return
        self._send(status, result)

    def _send(self, status: HTTPStatus, body: Any) -> None:
        data = (json.dumps(body, indent=1, default=str) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("api: " + format, *args)
