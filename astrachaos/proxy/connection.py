"""One proxied TCP connection: two pumps reading, two links writing through the active toxics."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
from collections.abc import Callable
from typing import Protocol

from astrachaos.proxy.interception import CqlRelay
from astrachaos.proxy.toxics import (
    ActiveToxic,
    Bandwidth,
    Direction,
    Latency,
    LimitData,
    ResetPeer,
    Slicer,
    Timeout,
    kind_of,
)

CHUNK = 65536
QUEUED_CHUNKS = 64  # past this the pump stops reading: TCP back-pressure, as a real link
RECORDED_PER_STEP = 8  # requests forwarded unread are recorded this many per loop step


class ConnectionHost(Protocol):
    """What a connection needs from the proxy that accepted it (all on the proxy loop)."""

    rng: random.Random

    def toxics(self) -> tuple[ActiveToxic, ...]: ...

    def changed(self) -> asyncio.Event: ...

    def count(self, what: str, amount: int = 1) -> None: ...


class Link:
    """One direction of a connection: a queue of chunks and the task that writes them out."""

    def __init__(self, connection: ProxyConnection, way: Direction, writer: asyncio.StreamWriter):
        self.connection = connection
        self.way = way
        self.writer = writer
        self.queue: asyncio.Queue[tuple[float, bytes, int] | None] = asyncio.Queue(QUEUED_CHUNKS)
        self.passed_since: dict[int, int] = {}  # toxic key → bytes written since it applied
        self._counter = f"bytes_{way.value}"
        self._holding = False  # `run` has taken a chunk it has not finished writing

    async def put(self, data: bytes, mark: int = 0) -> None:
        """Send bytes in this direction: at once when no toxic is in force and nothing waits before
        them, else queued (stamped with their arrival time) for `run`.

        `mark`: the capture ledger number they wait for (committed before they go out).
        """
        if not data:
            return
        if self.send_now(data, mark):
            await self.writer.drain()  # returns at once unless the peer reads slower (back-pressure)
        else:
            await self.queue.put((time.monotonic(), data, mark))

    def send_now(self, data: bytes, mark: int = 0) -> bool:
        """Hand `data` to the socket now, if no toxic is in force and nothing waits before it (the
        hot path: no queue, no task hand-over); False: nothing done, `put` it instead."""
        if self._holding or not self.queue.empty() or self.connection.host.toxics():
            return False
        self.connection.durable(mark)
        self.writer.write(data)
        self.connection.host.count(self._counter, len(data))
        return True

    async def run(self) -> None:
        """Write queued chunks through the toxics until end of stream or a closing toxic."""
        host = self.connection.host
        while True:
            self._holding = False
            item = await self.queue.get()
            if item is None:
                with contextlib.suppress(OSError):
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                return
            self._holding = True
            arrived, data, mark = item
            self.connection.durable(mark)
            if not host.toxics():  # nothing to apply: what else is queued and durable goes in the same write
                data = self._coalesce(data)
            await self._hold_while_blackholed()
            toxics = self.connection.affecting(self.way)
            delay = sum(self._latency(t.toxic) for t in toxics if isinstance(t.toxic, Latency))
            if delay > 0:
                host.count("latency")
                await asyncio.sleep(max(0.0, arrived + delay - time.monotonic()))
            for active in toxics:
                if isinstance(active.toxic, LimitData):
                    passed = self.passed_since.get(active.key, 0)
                    if passed + len(data) >= active.toxic.limit_bytes:
                        await self._write(data[: max(0, active.toxic.limit_bytes - passed)], toxics)
                        host.count("limit_data")
                        self.connection.close()
                        return
            await self._write(data, toxics)
            for active in toxics:
                self.passed_since[active.key] = self.passed_since.get(active.key, 0) + len(data)

    def _coalesce(self, data: bytes) -> bytes:
        """`data` joined with the chunks queued behind it that need no wait (up to end of stream)."""
        queue, durable = self.queue, self.connection.durable_mark
        if queue.empty():
            return data
        pieces = [data]
        while not queue.empty():
            item = queue._queue[0]  # type: ignore[attr-defined]  # peek: asyncio.Queue has no public one
            if item is None or item[2] > durable:
                break
            pieces.append(queue.get_nowait()[1])  # type: ignore[index]
        return b"".join(pieces)

    def _latency(self, toxic: Latency) -> float:
        jitter = self.connection.host.rng.uniform(-toxic.jitter_ms, toxic.jitter_ms)
        return max(0.0, toxic.latency_ms + jitter) / 1000

    async def _hold_while_blackholed(self) -> None:
        while any(isinstance(t.toxic, Timeout) for t in self.connection.affecting(self.way)):
            self.connection.host.count("timeout")
            await self.connection.host.changed().wait()

    async def _write(self, data: bytes, toxics: list[ActiveToxic]) -> None:
        host = self.connection.host
        slicer = next((t.toxic for t in toxics if isinstance(t.toxic, Slicer)), None)
        bandwidth = next((t.toxic for t in toxics if isinstance(t.toxic, Bandwidth)), None)
        pieces = [data]
        if slicer is not None:
            host.count("slicer")
            pieces = _slices(data, slicer, host.rng)
        elif bandwidth is not None:
            step = max(1, bandwidth.rate_bytes_per_s // 20)
            pieces = [data[i : i + step] for i in range(0, len(data), step)]
        for index, piece in enumerate(pieces):
            self.writer.write(piece)
            await self.writer.drain()
            host.count(self._counter, len(piece))
            if bandwidth is not None:
                host.count("bandwidth")
                await asyncio.sleep(len(piece) / max(1, bandwidth.rate_bytes_per_s))
            if slicer is not None and slicer.delay_us and index < len(pieces) - 1:
                await asyncio.sleep(slicer.delay_us / 1e6)


def _slices(data: bytes, slicer: Slicer, rng: random.Random) -> list[bytes]:
    pieces: list[bytes] = []
    at = 0
    while at < len(data):
        size = slicer.average_size + rng.randint(-slicer.size_variation, slicer.size_variation)
        size = max(1, size)
        pieces.append(data[at : at + size])
        at += size
    return pieces


class ProxyConnection:
    """A client connection relayed to its node, possibly CQL-aware."""

    def __init__(
        self,
        host: ConnectionHost,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        server: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        relay: CqlRelay | None,
        on_closed: Callable[[ProxyConnection], None],
    ) -> None:
        self.host = host
        self.client_reader, self.client_writer = client
        self.server_reader, self.server_writer = server
        self.relay = relay
        self.upstream = Link(self, Direction.UPSTREAM, self.server_writer)
        self.downstream = Link(self, Direction.DOWNSTREAM, self.client_writer)
        self._selected: dict[int, bool] = {}
        self._on_closed = on_closed
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._durable_mark = 0
        self._answers_held: asyncio.Future[None] | None = None  # answers wait: sent requests unrecorded
        self.closed = False

    def affecting(self, way: Direction) -> list[ActiveToxic]:
        """The active toxics that apply to this connection's bytes travelling `way`."""
        return [t for t in self.host.toxics() if t.direction.covers(way) and self.selected(t)]

    def selected(self, active: ActiveToxic) -> bool:
        """Whether this connection is among the `toxicity` fraction `active` affects (drawn once)."""
        if active.key not in self._selected:
            self._selected[active.key] = self.host.rng.random() < active.toxicity
        return self._selected[active.key]

    async def run(self) -> None:
        """Relay until either side closes or a toxic ends the connection."""
        self._tasks = [
            asyncio.create_task(self._pump_client()),
            asyncio.create_task(self._pump_server()),
            asyncio.create_task(self.upstream.run()),
            asyncio.create_task(self.downstream.run()),
        ]
        for task in self._tasks:
            task.add_done_callback(self._close_on_failure)
        self.toxics_changed()
        try:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            self.close()

    def _close_on_failure(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.close()

    def toxics_changed(self) -> None:
        """React to toxics that act on the whole connection (reset_peer, timeout with a limit)."""
        for active in self.host.toxics():
            if active.key in self._timers or not self.selected(active):
                continue
            toxic = active.toxic
            if isinstance(toxic, ResetPeer):
                delay, action = toxic.timeout_ms, self._reset_for(active)
            elif isinstance(toxic, Timeout) and toxic.timeout_ms > 0:
                delay, action = toxic.timeout_ms, self._close_if_still(active)
            else:
                continue
            self._timers[active.key] = asyncio.get_running_loop().call_later(delay / 1000, action)

    def _reset_for(self, active: ActiveToxic) -> Callable[[], None]:
        def reset() -> None:
            if active in self.host.toxics():
                self.host.count(kind_of(active.toxic))
                self.reset(active.direction)

        return reset

    def _close_if_still(self, active: ActiveToxic) -> Callable[[], None]:
        def close() -> None:
            if active in self.host.toxics():
                self.close()

        return close

    def reset(self, direction: Direction) -> None:
        """Abort with RST towards the receiving end(s) of `direction`; close the other end."""
        if direction.covers(Direction.DOWNSTREAM):
            _abort_with_rst(self.client_writer)
        if direction.covers(Direction.UPSTREAM):
            _abort_with_rst(self.server_writer)
        self.close()

    def close(self) -> None:
        """Close both sockets and stop every task (idempotent)."""
        if self.closed:
            return
        self.closed = True
        for timer in self._timers.values():
            timer.cancel()
        for writer in (self.client_writer, self.server_writer):
            writer.close()
        if self.relay is not None:
            self.relay.connection_closed()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        self._on_closed(self)

    async def _pump_client(self) -> None:
        while data := await _read(self.client_reader):
            if self.relay is None:
                await self.upstream.put(data)
                continue
            if self.relay.passes_unread() and self.upstream.send_now(data):
                await self._record_sent(data)
                continue
            read = self.relay.read_client(data)
            if isinstance(read, bytes):
                upstream, answers = read, b""
            else:  # this connection alone waits (e.g. for a table's schema); its frames stay in order
                await self.relay.prepare(read)
                upstream, answers = self.relay.answer_client(read)
            await self.upstream.put(upstream)
            await self.downstream.put(answers, self.relay.mark)
        await self.upstream.queue.put(None)

    async def _record_sent(self, data: bytes) -> None:
        """Client bytes already on the node's way, read and recorded after: a few requests at a time,
        letting the server pump in between (the relay records whatever an answer answers before
        reading it, so the capture misses nothing and answers need not wait for a whole burst)."""
        assert self.relay is not None
        read = self.relay.read_client(data)
        if isinstance(read, bytes):  # relayed raw from now on: they went out as they were
            return
        if not self.relay.ready(read):  # a table's schema to read first: its answers wait too
            held = self._answers_held = asyncio.get_running_loop().create_future()
            try:
                await self.relay.prepare(read)
            finally:
                self._answers_held = None
                held.set_result(None)
        self.relay.forwarded(read)
        await self.upstream.writer.drain()
        while self.relay.record_forwarded(RECORDED_PER_STEP):
            await asyncio.sleep(0)

    async def _pump_server(self) -> None:
        while data := await _read(self.server_reader):
            if self._answers_held is not None:
                await self._answers_held
            if self.relay is None:
                await self.downstream.put(data)
                continue
            out = self.relay.from_server(data)
            await self.downstream.put(out, self.relay.mark)
        await self.downstream.queue.put(None)

    @property
    def durable_mark(self) -> int:
        """The capture ledger number known committed (what the client may be told)."""
        return self._durable_mark

    def durable(self, mark: int) -> None:
        """Commit the capture ledger through row `mark` (what the client's next bytes tell) before
        they go out. Committed here, on the loop (about 0.1 ms for a read's answers; checkpoints
        run on the ledger's thread): a hand-over to the ledger's thread and back cost more
        latency than the commit. Raises (and the connection closes) if the ledger failed."""
        if mark <= self._durable_mark or self.relay is None or self.relay.capture is None:
            return
        self.relay.capture.commit_through(mark)
        self._durable_mark = max(self._durable_mark, mark)


async def _read(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.read(CHUNK)
    except OSError:
        return b""


def _abort_with_rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
