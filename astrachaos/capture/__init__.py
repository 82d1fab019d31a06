"""Write capture: what any client wrote (through the proxy or the Python API) and what it was told.

Contract shared by the two front doors (`astrachaos proxy --capture DIR` and `astrachaos.chaos()`):

- A capture is a directory holding `capture.sqlite` (see `ledger.py`; rows are durable in its
  journal, `journal.py`, before SQLite holds them, and a reader completes the file from a killed
  producer's journal). Producers open it with
  `CaptureLedger(directory)`, call `sent(CapturedWrite) -> id` when a write leaves for the
  database, `answered(id, Told, error_class, error_message)` when the client is told something,
  `unverifiable(Unverifiable)` for a write whose key cannot be known, and `close()` at the end.
  An answer is durable once `flush()` returns (or `when_durable` calls back): hold the client's
  answer until then and a kill -9 loses nothing the client was told.
- `keys.py` turns a table's key columns and the bound (column, value) pairs of a statement into a
  `Keyed` (key dict, value columns, value digest) or an unverifiable reason. Values are Python
  values as the DataStax Python driver reads them (int, str, uuid.UUID, datetime, bytes, ...);
  `sent(CapturedWrite)` serializes the key with the driver.
- `cells.py`: the proxy's form (format 2), with no decoding on the hot path: the key as joined
  serialized cells, its Murmur3 token, a digest of the other cells and a 40-bit fingerprint;
  producers that hold bytes call `sent_cells(...)` (see `standalone/capture_plan.py`).
- `verify.py`: `verify_capture(directory, session, claims=None, out=OUT) -> CaptureResult`
  reads every captured key back (`table_verify.py`: token ranges whose fingerprint sums agree
  are ok as a whole, the rest key by key in `judge.py`; `reads.py` reads cells undecoded) and
  classifies every write (`WriteClass`); `OUT/result.json` holds counts, non-ok records and
  injectors, and `astrachaos report OUT` renders it. `reader.py` reads a ledger (read-only).

Public names (stable): Told, WriteKind, WriteClass, CapturedWrite, Answer, Unverifiable,
CaptureLedger, CaptureReader, Keyed, TableKeys, key_of, value_digest, verify_capture,
CaptureResult, Claims.
"""

from astrachaos.capture.keys import Keyed, TableKeys, key_of, value_digest
from astrachaos.capture.ledger import CaptureLedger
from astrachaos.capture.model import Answer, CapturedWrite, Told, Unverifiable, WriteClass, WriteKind
from astrachaos.capture.reader import CaptureReader
from astrachaos.capture.verify import CaptureResult, Claims, verify_capture

__all__ = [
    "Answer",
    "CaptureLedger",
    "CaptureReader",
    "CaptureResult",
    "CapturedWrite",
    "Claims",
    "Keyed",
    "TableKeys",
    "Told",
    "Unverifiable",
    "WriteClass",
    "WriteKind",
    "key_of",
    "value_digest",
    "verify_capture",
]
