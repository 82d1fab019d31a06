"""The proxy's capture tape: what the relays saw, written before the client hears, decoded later.

A taped capture must record exactly what the capture proper records when it decodes on the loop
(same keys, answers, faults, unverifiable writes, and the times things happened), and a tape left
by a killed proxy must be replayed once, over what the proxy had already put in the ledger.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

from astrachaos.capture import CaptureLedger, CaptureReader
from astrachaos.capture import tape as capture_tape
from astrachaos.capture.keys import Reason
from astrachaos.proxy.cql import Envelope, Opcode
from astrachaos.standalone.capture import SchemaCache, WriteCapture
from astrachaos.standalone.taped import TapedCapture, complete_capture

KNOWN = [("ks", "kv", "k", "partition_key", 0, "int"), ("ks", "kv", "v", "regular", -1, "text")]
LATER = [("ks", "later", "k", "partition_key", 0, "int"), ("ks", "later", "v", "regular", -1, "text")]


def _insert(stream: int, key: int, table: str = "kv") -> Envelope:
    """A v4 QUERY with bound values: INSERT INTO ks.<table> (k, v) VALUES (?, ?)."""
    text = f"INSERT INTO ks.{table} (k, v) VALUES (?, ?)".encode()
    values = [struct.pack(">i", key), b"value"]
    body = struct.pack(">i", len(text)) + text + struct.pack(">HB", 1, 0x01)
    body += struct.pack(">H", len(values)) + b"".join(struct.pack(">i", len(v)) + v for v in values)
    return Envelope(4, False, 0, stream, Opcode.QUERY, body)


def _literal(stream: int) -> Envelope:
    text = b"INSERT INTO ks.kv (k, v) VALUES (1, 'x')"
    return Envelope(4, False, 0, stream, Opcode.QUERY, struct.pack(">i", len(text)) + text + b"\x00\x01\x00")


def _string(text: str) -> bytes:
    return struct.pack(">H", len(text)) + text.encode()


def _prepare(stream: int, text: str) -> Envelope:
    return Envelope(4, False, 0, stream, Opcode.PREPARE, struct.pack(">i", len(text)) + text.encode())


def _prepared(stream: int, prepared_id: bytes) -> Envelope:
    """RESULT Prepared of INSERT INTO ks.kv (k, v) VALUES (?, ?): k int (the partition key), v text."""
    body = struct.pack(">iH", 0x0004, len(prepared_id)) + prepared_id
    body += struct.pack(">iiiH", 0x0001, 2, 1, 0) + _string("ks") + _string("kv")
    body += _string("k") + struct.pack(">H", 0x0009) + _string("v") + struct.pack(">H", 0x000D)
    body += struct.pack(">ii", 0x0004, 0)  # result metadata: none
    return Envelope(4, True, 0, stream, Opcode.RESULT, body)


def _execute(stream: int, prepared_id: bytes, key: int) -> Envelope:
    values = [struct.pack(">i", key), b"executed"]
    body = struct.pack(">H", len(prepared_id)) + prepared_id + struct.pack(">HBH", 1, 0x01, len(values))
    body += b"".join(struct.pack(">i", len(v)) + v for v in values)
    return Envelope(4, False, 0, stream, Opcode.EXECUTE, body)


def _void(stream: int) -> Envelope:
    return Envelope(4, True, 0, stream, Opcode.RESULT, struct.pack(">i", 1))


def _error(stream: int, code: int, message: str) -> Envelope:
    text = message.encode()
    return Envelope(4, True, 0, stream, Opcode.ERROR, struct.pack(">iH", code, len(text)) + text)


class Schema:
    """system_schema rows: `kv` from the start, `later` from the second read on."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> list[tuple[str, str, str, str, int, str]]:
        self.reads += 1
        return KNOWN if self.reads == 1 else KNOWN + LATER


def _feed(capture: WriteCapture | TapedCapture) -> None:
    """One connection's calls: every kind of answer, a refusal, a drop, a table the schema lacks."""
    connection = capture.connection("n1", lambda: None)
    connection.request(_prepare(9, "INSERT INTO ks.kv (k, v) VALUES (?, ?)"), None, None)
    connection.response(_prepared(9, b"pid1"), None)
    for stream, key in ((10, 11), (11, 12)):  # the proxy's hot path: EXECUTE of a prepared write
        connection.request(_execute(stream, b"pid1", key), None, None)
        connection.response(_void(stream), None)
    connection.request(_insert(1, 1), None, None)
    connection.response(_void(1), None)
    connection.request(_insert(2, 2), "timeouts", None)
    connection.response(_error(2, 0x1100, "write timed out"), None)
    connection.request(_insert(3, 3), "overload", "Overloaded")
    connection.request(_insert(4, 4), "replace", None)
    connection.response(_void(4), _error(4, 0x1100, "astrachaos: injected"))
    connection.request(_insert(5, 5), "drop", None)
    connection.dropped(5)
    connection.request(_literal(6), None, None)
    connection.response(_void(6), None)
    connection.request(_insert(7, 70, "later"), None, None)
    connection.response(_void(7), None)
    connection.request(_insert(8, 8), None, None)  # in flight when the connection closes
    connection.closed()


def _recorded(directory: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with CaptureReader(directory) as reader:
        writes = [
            (table, w.write.key["k"], w.write.fault, w.answer.told.value, w.answer.error_class)
            for table in ("kv", "later")
            for w in reader.writes("ks", table)
        ]
        unverifiable = [(u.reason, u.keyspace, u.table, u.fault) for u in reader.unverifiable()]
    return sorted(writes, key=str), unverifiable


def test_a_taped_capture_records_what_decoding_on_the_loop_records(tmp_path: Path) -> None:
    direct_schema, taped_schema = SchemaCache(Schema()), SchemaCache(Schema())
    direct_schema.refresh()
    taped_schema.refresh()
    direct_ledger = CaptureLedger(tmp_path / "direct")
    direct = WriteCapture(direct_ledger, direct_schema)
    direct_connection = direct.connection("n1", lambda: None)
    direct_connection.wait_for_schema([_insert(7, 70, "later")])  # the loop awaits this (`prepare`)
    _feed(direct)
    direct_ledger.close()
    taped_ledger = CaptureLedger(tmp_path / "taped")
    taped = TapedCapture(WriteCapture(taped_ledger, taped_schema), tmp_path / "taped")
    began = time.time()
    _feed(taped)
    fed = time.time()
    time.sleep(0.3)  # anything replayed now would carry the wrong time
    taped.close()
    taped_ledger.close()
    writes, unverifiable = _recorded(tmp_path / "taped")
    assert (writes, unverifiable) == _recorded(tmp_path / "direct")
    assert ("kv", 3, "overload", "error", "Overloaded") in writes
    assert ("kv", 4, "replace", "error", "WriteTimeout") in writes
    assert ("later", 70, None, "result", None) in writes  # its table was read by the replay
    assert ("kv", 11, None, "result", None) in writes and ("kv", 12, None, "result", None) in writes
    assert unverifiable == [(Reason.LITERALS.value, "ks", "kv", None)]
    with CaptureReader(tmp_path / "taped") as reader:
        sent = [w.write.sent_at for w in reader.writes("ks", "kv")]
        answered = [w.answer.answered_at for w in reader.writes("ks", "kv") if w.answer.answered_at]
    assert all(began <= at <= fed for at in sent + answered), "rows carry the replay's time, not the tape's"


def test_the_tape_holds_what_was_committed_and_a_cut_record_ends_it(tmp_path: Path) -> None:
    writer = capture_tape.TapeWriter(tmp_path, 41, 7)
    row = ("request", 1, 4, 0, 1, 7, b"body", None, None, 1.5, None, None, None)
    number = writer.add(row)
    assert [found for found, _ in capture_tape.rows(writer.path, 0, writer.size)] == [[writer_start(41, 7)]]
    writer.commit_through(number)
    writer.add(row)  # appended, not committed: a kill -9 now loses it (nobody was answered)
    size = writer.size
    with open(writer.path, "ab") as file:
        file.write(b"\x00\x00\x01\x00cut")  # a record a killed write left half-written
    found = [rows for rows, _ in capture_tape.rows(writer.path, 0, writer.path.stat().st_size)]
    assert found == [[writer_start(41, 7)], [row]]
    assert capture_tape.start_of(writer.path) == (41, 7) and size < writer.path.stat().st_size


def writer_start(write_id: int, unverifiable_id: int) -> tuple[object, ...]:
    return (capture_tape.START, write_id, unverifiable_id) + (None,) * (capture_tape.WIDTH - 3)


PRODUCER = """
import os, struct, sys, time
from pathlib import Path
sys.path[:0] = sys.argv[2].split(os.pathsep)  # the test's own: the package it tests, then the checkout
from tests.unit.test_capture_tape import KNOWN, _insert, _void
from astrachaos.capture import CaptureLedger
from astrachaos.standalone.capture import SchemaCache, WriteCapture
from astrachaos.standalone.taped import TapedCapture

directory = Path(sys.argv[1])
schema = SchemaCache(lambda: KNOWN)
schema.refresh()
ledger = CaptureLedger(directory, commit_interval_s=0.05)
taped = TapedCapture(WriteCapture(ledger, schema), directory)
connection = taped.connection("n1", lambda: None)
for key in range(200):
    connection.request(_insert(key % 100 + 1, key), None, None)
    connection.response(_void(key % 100 + 1), None)
    connection.commit_through(connection.mark)
    if key == 99:  # idle: the first half is replayed into the ledger and journaled there
        while taped.replay.position < taped.tape.size:
            time.sleep(0.05)
        ledger.flush()
connection.request(_insert(5, 1000), None, None)  # sent, never answered
connection.commit_through(taped.tape.mark)
print("ready", flush=True)
time.sleep(600)
"""


def test_a_killed_proxys_tape_is_replayed_once_over_what_it_had_recorded(tmp_path: Path) -> None:
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join([p for p in sys.path if p] + [root])
    command = [sys.executable, "-c", PRODUCER, str(tmp_path), path]
    producer = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert producer.stdout is not None and producer.stdout.readline().strip() == "ready"
        with complete_capture(tmp_path, lambda: KNOWN) as completed:  # its producer still runs: a copy
            assert completed != tmp_path
            assert _writes_told(completed) == EXPECTED
        assert (tmp_path / "capture.tape").is_file()  # the producer's own files stay as they were
    finally:
        producer.send_signal(signal.SIGKILL)
        producer.wait(30)
    with complete_capture(tmp_path, lambda: KNOWN) as completed:
        assert completed == tmp_path
    assert not (tmp_path / "capture.tape").exists()
    assert _writes_told(tmp_path) == EXPECTED, "each write once: the replay replaced what was there"


EXPECTED = sorted([(k, "result") for k in range(200)] + [(1000, "no_answer")])


def _writes_told(directory: Path) -> list[tuple[int, str]]:
    with CaptureReader(directory) as reader:
        return sorted((w.write.key["k"], w.answer.told.value) for w in reader.writes("ks", "kv"))
