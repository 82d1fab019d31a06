"""The capture ledger: every answer flushed before a kill -9 is read back; typed keys round-trip."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from astrachaos.capture import CapturedWrite, CaptureLedger, CaptureReader, Told, WriteKind
from astrachaos.capture.keys import Reason, TableKeys, key_of

_CHILD = """
import sys, time
from pathlib import Path
from astrachaos.capture import CaptureLedger, CapturedWrite, Told, WriteKind
ledger = CaptureLedger(Path(sys.argv[1]))
n = 0
while True:
    for _ in range(500):
        w = CapturedWrite("ks", "t", {"k": n}, {"k": "int"}, "d", WriteKind.INSERT, "c", 1, time.time())
        i = ledger.sent(w)
        ledger.answered(i, Told.RESULT)
        n += 1
    ledger.flush()
    print(n, flush=True)
"""


def _killed_once_durable(child_code: str, capture: Path, at_least: int) -> tuple[int, set[int]]:
    """Run `child_code`, kill -9 it once it says `at_least` writes are durable; (that count, keys
    the capture holds as answered with a result)."""
    command = [sys.executable, "-c", child_code, str(capture)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    durable = 0
    deadline = time.monotonic() + 20
    while durable < at_least and time.monotonic() < deadline:
        durable = int(child.stdout.readline())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with CaptureReader(capture) as reader:
        writes = list(reader.writes("ks", "t"))
    return durable, {w.write.key["k"] for w in writes if w.answer.told is Told.RESULT}


def test_kill_9_loses_nothing_flushed(tmp_path: Path) -> None:
    flushed, answered = _killed_once_durable(_CHILD, tmp_path, 5000)
    assert flushed >= 5000
    assert set(range(flushed)) <= answered


def test_typed_keys_round_trip(tmp_path: Path) -> None:
    key = {
        "id": uuid.uuid4(),
        "at": dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC),
        "b": b"\x00\xff",
    }
    types = {"id": "uuid", "at": "timestamp", "b": "blob"}
    with CaptureLedger(tmp_path) as ledger:
        ledger.sent(CapturedWrite("ks", "t", key, types, None, WriteKind.DELETE, "c", 3, time.time()))
    with CaptureReader(tmp_path) as reader:
        (stored,) = reader.writes("ks", "t")
    assert dict(stored.write.key) == key
    assert stored.answer.told is Told.NO_ANSWER


def test_a_key_bound_partly_or_as_literals_is_unverifiable() -> None:
    keys = TableKeys("ks", "t", ("a",), ("b",), {"a": "int", "b": "int", "v": "text"})
    assert key_of(keys, [("a", 1), ("v", "x")], WriteKind.UPDATE) is Reason.PARTIAL_KEY
    assert key_of(keys, [("a", 1), ("v", "x")], WriteKind.INSERT, literal=["b"]) is Reason.LITERALS
    assert key_of(keys, [("a", 1), ("b", None)], WriteKind.INSERT) is Reason.UNSET_KEY
    keyed = key_of(keys, [("a", 1), ("b", 2), ("v", "x")], WriteKind.INSERT)
    assert not isinstance(keyed, Reason)
    assert keyed.key == {"a": 1, "b": 2} and keyed.value_columns == ("v",)


_CHILD_COMMITTING = """
import sys, time
from pathlib import Path
from astrachaos.capture import CaptureLedger, CapturedWrite, Told, WriteKind
ledger = CaptureLedger(Path(sys.argv[1]), commit_interval_s=3600)  # its thread never commits on its own
n = 0
while True:
    for _ in range(50):
        w = CapturedWrite("ks", "t", {"k": n}, {"k": "int"}, "d", WriteKind.INSERT, "c", 1, time.time())
        mark = ledger.answered(ledger.sent(w), Told.RESULT)
        n += 1
    ledger.commit_through(mark)  # on this thread, as the proxy's loop does
    print(n, flush=True)
"""


def test_kill_9_loses_nothing_committed_on_the_producer_thread(tmp_path: Path) -> None:
    """`commit_through` makes answers durable without the writer thread (WAL checkpoints stay off it)."""
    committed, answered = _killed_once_durable(_CHILD_COMMITTING, tmp_path, 3000)
    assert committed >= 3000
    assert set(range(committed)) <= answered
