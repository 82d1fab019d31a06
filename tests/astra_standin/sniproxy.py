"""A mutual-TLS proxy that routes each connection by its SNI name (a host_id) to a node's CQL port."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Mapping


class SniProxy:
    """Terminates TLS on a loopback address and pipes plain CQL to the node its SNI names.

    Runs an asyncio loop in a daemon thread; `start` returns once the port is bound.
    """

    def __init__(
        self, address: str, context: ssl.SSLContext, routes: Mapping[str, tuple[str, int]]
    ) -> None:
        self.address = address
        self.routes = dict(routes)
        self.port = 0
        self.seen: list[str] = []  # every SNI name a handshake carried, in order
        self._names: dict[int, str] = {}
        self._context = context
        context.sni_callback = self._on_sni
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="standin-sni-proxy")
        self._thread.daemon = True
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _on_sni(self, ssl_object: object, server_name: str | None, _: ssl.SSLContext) -> None:
        # The handshake's SSLObject is what the connection handler sees later: key by identity.
        if server_name is not None:
            self._names[id(ssl_object)] = server_name
            self.seen.append(server_name)

    def start(self) -> None:
        """Bind and serve."""
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        future.result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, self.address, 0, ssl=self._context, ssl_handshake_timeout=10
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            ssl_object = client_w.get_extra_info("ssl_object")
            route = self.routes.get(self._names.pop(id(ssl_object), ""))
            if route is None:
                return  # no SNI, or not a node of this database: hang up
            node_r, node_w = await asyncio.open_connection(*route)
            try:
                await asyncio.gather(_pipe(client_r, node_w), _pipe(node_r, client_w))
            finally:
                node_w.close()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            client_w.close()
            self._tasks.discard(task)

    def stop(self) -> None:
        """Close the listener and every open connection, then end the loop's thread."""

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.sleep(0)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    finally:
        # One side ended: end the other, so neither waits forever.
        with contextlib.suppress(OSError, RuntimeError):
            sink.close()
