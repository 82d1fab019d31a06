"""The schema lookup of a table the capture does not know yet runs off the proxy's loop: the waiting
connection holds its own frames, in order, while every other connection keeps flowing."""

from __future__ import annotations

import asyncio
import struct
import threading
from pathlib import Path

from astrachaos.capture import CaptureLedger, CaptureReader
from astrachaos.proxy.cql import Envelope, Opcode
from astrachaos.standalone.capture import SchemaCache, WriteCapture

KNOWN = [("ks", "known", "k", "partition_key", 0, "int"), ("ks", "known", "v", "regular", -1, "text")]
CREATED_LATER = [("ks", "later", "k", "partition_key", 0, "int"), ("ks", "later", "v", "regular", -1, "text")]


def _insert(stream: int, table: str, key: int) -> Envelope:
    """A v4 QUERY with bound values: INSERT INTO ks.<table> (k, v) VALUES (?, ?)."""
    text = f"INSERT INTO ks.{table} (k, v) VALUES (?, ?)".encode()
    values = [struct.pack(">i", key), b"value"]
    body = struct.pack(">i", len(text)) + text + struct.pack(">HB", 1, 0x01)
    body += struct.pack(">H", len(values)) + b"".join(struct.pack(">i", len(v)) + v for v in values)
    return Envelope(4, False, 0, stream, Opcode.QUERY, body)


class SlowSchema:
    """system_schema rows; every read after the first blocks until the test releases it."""

    def __init__(self) -> None:
        self.reads = 0
        self.reading = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> list[tuple[str, str, str, str, int, str]]:
        self.reads += 1
        if self.reads == 1:
            return KNOWN
        self.reading.set()
        assert self.release.wait(60), "the test never released the lookup"
        return KNOWN + CREATED_LATER


def test_a_slow_lookup_holds_only_its_own_connection(tmp_path: Path) -> None:
    fetch = SlowSchema()
    schema = SchemaCache(fetch)
    schema.refresh()
    ledger = CaptureLedger(tmp_path)
    capture = WriteCapture(ledger, schema)
    waiting, flowing = capture.connection("n1", lambda: None), capture.connection("n1", lambda: None)
    first, other = _insert(1, "later", 7), _insert(1, "known", 8)
    order: list[str] = []

    async def both_connections() -> None:
        held = asyncio.create_task(waiting.prepare([first]))
        await asyncio.to_thread(fetch.reading.wait, 60)  # the lookup runs in its worker thread
        await asyncio.wait_for(flowing.prepare([other]), 60)  # a known table: no wait
        flowing.request(other, None, None)
        order.append("other connection recorded")
        assert not held.done(), "the waiting connection went on before its table was known"
        fetch.release.set()
        await asyncio.wait_for(held, 60)
        waiting.request(first, None, None)
        order.append("held connection recorded")

    asyncio.run(both_connections())
    ledger.close()
    schema.close()
    assert order == ["other connection recorded", "held connection recorded"]
    with CaptureReader(tmp_path) as reader:
        assert reader.unverifiable() == []  # the held write was keyed once its table was read
        assert [w.write.key for w in reader.writes("ks", "later")] == [{"k": 7}]
        assert [w.write.key for w in reader.writes("ks", "known")] == [{"k": 8}]
    assert capture.counts["schema_lookups_waited"] == 1


def test_a_table_still_unknown_is_read_again_at_most_once_a_second() -> None:
    now = [100.0]
    reads: list[int] = []

    def fetch() -> list[tuple[str, str, str, str, int, str]]:
        reads.append(1)
        return KNOWN

    schema = SchemaCache(fetch, clock=lambda: now[0])
    missing = [("ks", "missing")]
    reading = schema.lookup(missing)
    assert reading is not None
    reading.result(60)
    assert schema.lookup(missing) is None  # just read: nothing to wait for, the write is unverifiable
    now[0] += 1.5
    again = schema.lookup(missing)
    assert again is not None
    again.result(60)
    assert len(reads) == 2
    assert schema.lookup([("ks", "known")]) is None  # known tables never wait
    schema.close()


class _SchemaSession:
    """What the proxy's capture asks of its session: system_schema.columns rows."""

    def execute(self, query: str) -> list[tuple[str, str, str, str, int, str]]:
        return KNOWN


def test_what_passed_unread_reaches_the_capture_while_the_proxy_runs(tmp_path: Path) -> None:
    """Not only at a clean exit: after a kill -9 the capture still says what it did not see."""
    import json
    import time

    from astrachaos.standalone.service import StandaloneProxy

    proxy = StandaloneProxy([("127.0.0.1", 9)], ("127.0.0.1", 0), capture_dir=tmp_path,
                            schema_session=_SchemaSession())  # fmt: skip
    proxy.start()
    try:
        proxy.counts["connections_not_followed"] += 1  # as the relay counts a TLS client
        deadline = time.monotonic() + 60
        while True:
            proxy.ledger.flush()
            with CaptureReader(tmp_path) as reader:
                unread = json.loads(reader.meta()["proxy"])["not_followed"]
            if unread["connections"] == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert unread == {"connections": 1, "refused": 0, "frames": 0, "requests": 0}
    finally:
        proxy.close()


def test_answers_are_recorded_with_a_prepare_pending_or_not(tmp_path: Path) -> None:
    """A RESULT (recorded in bulk) and an ERROR on write streams, with and without a PREPARE of
    another stream still awaiting its answer, are what the capture reads back."""
    from astrachaos.capture import Told

    schema = SchemaCache(lambda: KNOWN)
    schema.refresh()
    ledger = CaptureLedger(tmp_path)
    connection = WriteCapture(ledger, schema).connection("n1", lambda: None)
    error_body = struct.pack(">i", 0x1100) + struct.pack(">H", 8) + b"too late"
    connection.request(_insert(1, "known", 1), None, None)
    connection.response(Envelope(4, True, 0, 1, Opcode.RESULT, struct.pack(">i", 1)), None)
    prepare = b"SELECT v FROM ks.known WHERE k = ?"
    connection.request(
        Envelope(4, False, 0, 9, Opcode.PREPARE, struct.pack(">i", len(prepare)) + prepare), None, None
    )
    connection.request(_insert(2, "known", 2), None, None)
    connection.request(_insert(3, "known", 3), None, None)
    connection.response(Envelope(4, True, 0, 2, Opcode.RESULT, struct.pack(">i", 1)), None)
    connection.response(Envelope(4, True, 0, 3, Opcode.ERROR, error_body), None)
    ledger.commit_through(connection.mark)
    ledger.close()
    schema.close()
    with CaptureReader(tmp_path) as reader:
        answers = {w.write.key["k"]: w.answer for w in reader.writes("ks", "known")}
    assert {k: a.told for k, a in answers.items()} == {1: Told.RESULT, 2: Told.RESULT, 3: Told.ERROR}
    assert (answers[3].error_class, answers[3].error_message) == ("WriteTimeout", "too late")
