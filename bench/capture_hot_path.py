"""The proxy's capture cost per write, alone: EXECUTE requests and RESULT answers through the capture.

No network and no database: a prepared INSERT (int, bigint, 64-byte text) as the Python driver
sends it, N times, through `ConnectionCapture.request` and `.response` with a real capture ledger
committing on its thread. Prints the loop thread's CPU time per write (what the proxy's event
loop pays) and the wall time until the ledger has committed everything.

    python -m bench.capture_hot_path [N]
"""

from __future__ import annotations

import json
import os
import struct
import sys
import tempfile
import time
from pathlib import Path


def main(n: int) -> dict[str, float]:
    """Run N writes through the capture; the figures."""
    from cassandra import cqltypes

    from astrachaos.capture.ledger import CaptureLedger
    from astrachaos.proxy.bound import BindColumn, PreparedShape
    from astrachaos.proxy.cql import Envelope, Opcode, statement_of
    from astrachaos.proxy.statements import shape_of
    from astrachaos.standalone.capture import SchemaCache, WriteCapture, _Prepared

    schema = [("ks", "t", "bucket", "partition_key", 0, "int"), ("ks", "t", "id", "clustering", 0, "bigint"),
              ("ks", "t", "payload", "regular", -1, "text")]  # fmt: skip
    text = "INSERT INTO ks.t (bucket, id, payload) VALUES (?, ?, ?)"
    types = {"bucket": cqltypes.Int32Type, "id": cqltypes.LongType, "payload": cqltypes.UTF8Type}
    columns = [BindColumn("ks", "t", name, kind) for name, kind in types.items()]

    def value(data: bytes) -> bytes:
        return struct.pack(">i", len(data)) + data

    def execute(i: int) -> Envelope:
        body = (struct.pack(">H", 3) + b"pid" + struct.pack(">H", 2) + b"md" + struct.pack(">H", 1)
                + struct.pack(">i", 0x01 | 0x20) + struct.pack(">H", 3) + value(struct.pack(">i", i % 1024))
                + value(struct.pack(">q", i)) + value(b"x" * 64)
                + struct.pack(">q", 1_700_000_000_000_000 + i))  # fmt: skip
        return Envelope(5, False, 0, i % 32768, Opcode.EXECUTE, body)

    requests = [execute(i) for i in range(n)]
    answers = [Envelope(5, True, 0, i % 32768, Opcode.RESULT, struct.pack(">i", 1)) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        ledger = CaptureLedger(Path(tmp), max_pending_rows=10 * n)
        capture = WriteCapture(ledger, SchemaCache(lambda: schema))
        capture.schema.refresh()  # known tables: the planned hot path, not "unknown table"
        capture.prepared[b"pid"] = _Prepared(text, shape_of(text), PreparedShape(b"pid", columns, [0]),
                                             statement_of(text))  # fmt: skip
        connection = capture.connection("node", lambda: None)
        began, cpu = time.perf_counter(), time.thread_time()
        for request, answer in zip(requests, answers, strict=True):
            connection.request(request, None, None)
            connection.response(answer, None)
        cpu = time.thread_time() - cpu
        ledger.flush(timeout_s=600)
        wall = time.perf_counter() - began
        ledger.close()
    return {"writes": n, "loop_cpu_us_per_write": round(cpu / n * 1e6, 2),
            "wall_s_until_committed": round(wall, 2), "load_1m": round(os.getloadavg()[0], 1)}  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)))
