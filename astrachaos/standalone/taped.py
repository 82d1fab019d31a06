"""Write capture off the proxy's hot path: the relays' capture calls on a tape, replayed when idle.

While clients write, what a relay tells its capture (`WriteObserver`: a request, an answer, a
stream dropped, a connection closed) goes onto the capture tape as it came (the envelope's header
fields and body, the faults in force, the time) and is written in one `write()` before the client
hears what it explains (`capture/tape.py`). Nothing is decoded on the loop. `TapeReplay`, on a
thread of its own, replays the tape through the capture proper (`capture.py`: keys from prepared
metadata and system_schema, digests, the ledger) once no row was written for `PAUSE_S`, while
`APPLY_BYTES` or more wait (a slice per wake-up), and at close, with the times the tape recorded.

A tape left by a killed proxy is replayed from its start, over the rows it had put in the ledger,
by whoever opens the capture next: the next proxy, or `astrachaos verify` (`complete_capture`,
which replays a copy while a proxy still writes the capture).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from astrachaos.capture import journal, tape
from astrachaos.capture.ledger import APPLY_BYTES, IDLE_S, CaptureLedger, apply_journal_copy, capture_file
from astrachaos.errors import EnvironmentProblem
from astrachaos.proxy.cql import Envelope, Flag, FrameError, Opcode, response_body
from astrachaos.standalone.capture import ConnectionCapture, SchemaCache, SchemaRows, WriteCapture

log = logging.getLogger(__name__)

# What a tape row is (its first value); the rest: connection number, version, flags, stream, opcode,
# body, faults, refused, time, and the replacing answer's opcode, flags and body.
REQUEST, ANSWER, DROPPED, CLOSED, OPENED = "request", "answer", "dropped", "closed", "opened"
KEPT = (Opcode.QUERY, Opcode.EXECUTE, Opcode.BATCH, Opcode.PREPARE)  # what the capture reads
_PREFIXED = Flag.TRACING | Flag.WARNING | Flag.CUSTOM_PAYLOAD
SLICE_ROWS = 50_000  # rows replayed per wake-up while the tape grows past APPLY_BYTES
WAKE_S = 0.05  # how often the replay looks for a pause
# A pause: no tape row written for this long. Longer than the ledger's IDLE_S: a replay started in a
# hiccup of the client (a node's GC pause) takes the CPU the client wants back when it goes on.
PAUSE_S = 1.0


class TapedCapture:
    """The proxy's capture: written to a tape on the loop, replayed into `capture` off it."""

    def __init__(self, capture: WriteCapture, directory: Path) -> None:
        self.capture = capture
        first_write, first_unverifiable = capture.ledger.next_ids()
        self.tape = tape.TapeWriter(directory, first_write, first_unverifiable)
        self.replay = TapeReplay(capture, self.tape)
        self._connections = 0

    @property
    def counts(self) -> Any:
        """The capture's counters, as far as the tape is replayed."""
        return self.capture.counts

    @property
    def schema(self) -> SchemaCache:
        return self.capture.schema

    def connection(self, node: str, faults_now: Callable[[], str | None]) -> TapedConnection:
        """The capture of one new connection to `node` (on the loop)."""
        self._connections += 1
        self.tape.add(_row(OPENED, self._connections, body=f"c{self._connections}@{node}".encode()))
        return TapedConnection(self.tape, self._connections, faults_now)

    def backlog_bytes(self) -> int:
        """Bytes of tape not replayed yet, plus the ledger's journal SQLite does not hold."""
        return self.tape.size - self.replay.position + self.capture.ledger.backlog_bytes()

    def close(self) -> None:
        """Write the tape's last rows and replay all of it (the connections are closed)."""
        self.tape.close()
        self.replay.stop()


class TapedConnection:
    """One connection's capture calls, onto the tape (the relay's `WriteObserver`, on the loop)."""

    def __init__(
        self, tape_writer: tape.TapeWriter, number: int, faults_now: Callable[[], str | None]
    ) -> None:
        self.tape = tape_writer
        self.number = number
        self.faults_now = faults_now
        self.mark = 0  # the tape row the client's next bytes wait for
        self._asked: dict[int, int] = {}  # stream → opcode of a request on the tape, not answered yet

    async def prepare(self, envelopes: Sequence[Envelope]) -> None:
        """Nothing to wait for: the replay reads the schema it needs."""

    def ready(self, envelopes: Sequence[Envelope]) -> bool:
        return True

    def request(
        self, envelope: Envelope, fault: str | None, refused: str | None, *, toxics: bool = True
    ) -> None:
        """A client request the capture reads (a query, an execute, a batch, a prepare) onto the tape."""
        opcode = envelope.opcode
        if opcode not in KEPT:
            return
        if toxics:
            now = self.faults_now()
            if now:
                fault = f"{fault}, {now}" if fault else now
        row = (REQUEST, self.number, envelope.version, envelope.flags, envelope.stream, opcode,
               envelope.body, fault, refused, time.time(), None, None, None)  # fmt: skip
        number = self.tape.add(row)
        if refused is not None:  # answered by the proxy at once: on the tape before the client hears
            self.mark = number
        else:
            self._asked[envelope.stream] = opcode

    def response(self, envelope: Envelope, replaced: Envelope | None) -> None:
        """The answer to a request on the tape (a result's rows are not kept, only that it had rows)."""
        asked = self._asked.pop(envelope.stream, None)
        if asked is None:
            return
        flags, body = envelope.flags, envelope.body
        if envelope.opcode == Opcode.RESULT and asked != Opcode.PREPARE:
            flags, body = 0, _result_kind(envelope)
        instead = (None, None, None) if replaced is None else (replaced.opcode, replaced.flags, replaced.body)
        self.mark = self.tape.add((ANSWER, self.number, envelope.version, flags, envelope.stream,
                                   envelope.opcode, body, None, None, time.time(), *instead))  # fmt: skip

    def dropped(self, stream: int) -> None:
        """The server's answer on `stream` was swallowed: the client is told nothing."""
        if self._asked.pop(stream, None) is not None:
            self.tape.add(_row(DROPPED, self.number, stream=stream))

    def closed(self) -> None:
        """The connection closed: what is still asked was never answered."""
        self._asked.clear()
        self.tape.add(_row(CLOSED, self.number))

    def commit_through(self, number: int) -> None:
        """Write the tape through row `number` now (the loop, holding the client's answers)."""
        self.tape.commit_through(number)


def _row(kind: str, connection: int, *, stream: int = 0, body: bytes = b"") -> tape.Row:
    return (kind, connection, 0, 0, stream, 0, body, None, None, time.time(), None, None, None)


def _result_kind(envelope: Envelope) -> bytes:
    """A RESULT's kind (void, rows, set keyspace...), as the body of a RESULT without flags."""
    if not envelope.flags & _PREFIXED:
        return envelope.body[:4]
    try:
        return struct.pack(">i", response_body(envelope).int())
    except FrameError:
        return b""


class Replayer:
    """Replays tape rows through `capture`, one `ConnectionCapture` per connection (one thread)."""

    def __init__(self, capture: WriteCapture) -> None:
        self.capture = capture
        self._connections: dict[int, ConnectionCapture] = {}
        self._at = 0.0
        capture.ledger.clock = self._clock  # rows take the time the tape recorded

    def _clock(self) -> float:
        return self._at

    def replay(self, rows: Sequence[tape.Row]) -> None:
        """Replay `rows` in order (a row that cannot be read is logged and counted, never fatal)."""
        for row in rows:
            try:
                self._replay(row)
            except EnvironmentProblem:
                raise
            except Exception as error:
                self.capture.counts["tape_rows_not_replayed"] += 1
                log.warning("capture tape row not replayed (%s): %s", row[0], error)

    def _replay(self, row: tape.Row) -> None:
        kind, number, version, flags, stream, opcode, body, fault, refused, at = row[:10]
        if kind == tape.START:  # the ids the tape's rows begin at: for a replay from the start
            return
        self._at = float(at)
        if kind == OPENED:
            self._connections[number] = ConnectionCapture(self.capture, body.decode(), lambda: None)
            return
        connection = self._connections.get(number)
        if connection is None:  # opened before a tape this replay does not read: nothing to add to
            return
        if kind == REQUEST:
            envelope = Envelope(version, False, flags, stream, opcode, body)
            connection.wait_for_schema((envelope,))
            connection.request(envelope, fault, refused, toxics=False)
        elif kind == ANSWER:
            r_opcode, r_flags, r_body = row[10:]
            replaced = (
                None if r_opcode is None else Envelope(version, True, r_flags, stream, r_opcode, r_body)
            )
            connection.response(Envelope(version, True, flags, stream, opcode, body), replaced)
        elif kind == DROPPED:
            connection.dropped(stream)
        elif kind == CLOSED:
            connection.closed()
            del self._connections[number]


class TapeReplay:
    """Replays a live tape behind its writer, on a thread of its own (see the module's docstring)."""

    def __init__(self, capture: WriteCapture, writer: tape.TapeWriter, *, idle_s: float = PAUSE_S) -> None:
        self.writer = writer
        self.position = 0  # tape bytes replayed
        self._replayer = Replayer(capture)
        self._idle_s = idle_s
        self._lock = threading.Lock()  # one replay at a time: the thread's, or `stop`'s
        self._stopping = threading.Event()
        self.error: BaseException | None = None
        self._replay_thread = threading.Thread(target=self._run, name="capture-tape", daemon=True)
        self._replay_thread.start()

    def _run(self) -> None:
        writer, committed_at = self.writer, time.monotonic()
        try:
            while not self._stopping.wait(WAKE_S):
                if time.monotonic() - committed_at >= IDLE_S:  # requests still unanswered:
                    writer.commit_through(writer.mark)  # written, so a kill -9 keeps them
                    committed_at = time.monotonic()
                if self.position >= writer.size:
                    continue
                if time.monotonic() - writer.written_at >= self._idle_s:  # the clients paused
                    self._replay_to(writer.size, busy_from=writer.size)
                elif writer.size - self.position >= APPLY_BYTES:
                    self._replay_to(writer.size, rows=SLICE_ROWS)
        except BaseException as error:
            self.error = error
            log.error("the capture tape cannot be replayed: %s", error)

    def _replay_to(self, end: int, *, busy_from: int | None = None, rows: int | None = None) -> None:
        """Replay up to byte `end`: stop once the tape grows past `busy_from`, or after about `rows`."""
        with self._lock:
            done = 0
            for found, at in tape.rows(self.writer.path, self.position, end):
                self._replayer.replay(found)
                self.position, done = at, done + len(found)
                if busy_from is not None and self.writer.size != busy_from:  # the clients are back
                    return
                if rows is not None and done >= rows:
                    return

    def stop(self) -> None:
        """Stop the thread and replay what is left (the writer is closed)."""
        self._stopping.set()
        self._replay_thread.join()
        if self.error is not None:
            raise EnvironmentProblem(f"the capture tape could not be replayed: {self.error}")
        self._replay_to(self.writer.size)


def replay_left_tape(ledger: CaptureLedger, schema: SchemaCache, path: Path) -> bool:
    """Replay the tape at `path` (its proxy was killed) into `ledger` from its start, over the rows
    it had put there; False if there is none. The caller closes the ledger, then deletes the tape."""
    if not path.is_file():
        return False
    first_write, first_unverifiable = tape.start_of(path)
    ledger.forget_from(first_write, first_unverifiable)
    replayer = Replayer(WriteCapture(ledger, schema))
    for found, _ in tape.rows(path, 0, path.stat().st_size):
        replayer.replay(found)
    ledger.clock = time.time
    return True


@contextlib.contextmanager
def complete_capture(directory: Path, fetch: SchemaRows) -> Iterator[Path]:
    """The capture directory to read: `directory` itself, its tape replayed in place if its proxy was
    killed, or a copy with the tape replayed while a proxy still writes it."""
    path = tape.tape_path(directory)
    if not path.is_file():
        yield directory
        return
    probe = journal.ProducerLock(directory)
    producer_gone = probe.take()
    probe.release()
    schema = SchemaCache(fetch)
    try:
        if producer_gone:
            _replay_into(directory, schema, path)
            path.unlink()  # all of it is in capture.sqlite now
            yield directory
            return
        copy = Path(tempfile.mkdtemp(prefix="astrachaos-capture-"))
        try:
            _copy_ledger(directory, copy)
            _replay_into(copy, schema, path)
            yield copy
        finally:
            shutil.rmtree(copy, ignore_errors=True)
    finally:
        schema.close()


def _replay_into(directory: Path, schema: SchemaCache, path: Path) -> None:
    ledger = CaptureLedger(directory)
    try:
        replay_left_tape(ledger, schema, path)
    finally:
        ledger.close()


def _copy_ledger(directory: Path, copy: Path) -> None:
    """The ledger of `directory` (SQLite and the journal it does not hold yet) as `copy`'s."""
    source = sqlite3.connect(f"file:{capture_file(directory)}?mode=ro", uri=True)
    target = sqlite3.connect(capture_file(copy), isolation_level=None)
    try:
        apply_journal_copy(source, target, directory)
    finally:
        source.close()
        target.close()
