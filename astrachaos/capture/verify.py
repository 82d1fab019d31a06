"""Read every captured key back and classify every captured write (and the app's own claims).

Per table, one of two reads (first at `read_consistency`), both on undecoded cells (`reads.py`):

- Token ranges, when the table has at least `SCAN_FROM_KEYS` captured writes with a token (the
  proxy's; Murmur3 partitioner): the ring is cut into power-of-two ranges of about
  `WRITES_PER_RANGE` writes, and only ranges holding captured writes are read, several at a time.
  For each range SQLite sums, in C, the fingerprints (`cells.fingerprint`) of its writes; when every
  write of the range was told success, sets the table's usual columns and is not a DELETE, and
  the range's rows have the same count and fingerprint sum, every write of it is ok without
  being looked at one by one. Any other range is judged key by key against its rows.
- Partition by partition otherwise (few keys, writes given as Python values, other partitioners):
  the writes stream from the ledger in key order, a few thousand partitions read at a time.

Keys not found as written wait `settle_s` and are read again at the strongest level (ALL, else
QUORUM), as run verification does. Classes are in `WriteClass`; `judge.py` decides them.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astrachaos.capture.judge import CaptureRecord, Tally
from astrachaos.capture.model import WriteClass
from astrachaos.capture.reader import CaptureReader
from astrachaos.capture.reads import RawSession
from astrachaos.capture.table_verify import TableVerification, claimed_keys
from astrachaos.errors import EnvironmentProblem, ExitCode
from astrachaos.reconcile.keyfile import KeySpec

log = logging.getLogger(__name__)

__all__ = ["CaptureRecord", "CaptureResult", "Claims", "verify_capture", "write_result"]

SCAN_FROM_KEYS = 20_000  # from this many captured writes with a token in a table, read token ranges
_UNREAD_STREAMS = ("connections", "frames", "requests")  # the proxy's not_followed counts


@dataclass(frozen=True)
class Claims:
    """The application's own claims: keys it logged as stored (a log or a key file) in one table."""

    path: Path
    spec: KeySpec
    keyspace: str
    table: str


@dataclass(frozen=True)
class CaptureResult:
    """The verdict on a capture: counts per class, the writes that are not ok, the faults."""

    capture: str
    counts: dict[str, int]
    records: tuple[CaptureRecord, ...]
    injectors: list[dict[str, Any]]
    unverifiable_reasons: dict[str, int]
    unread: tuple[str, ...]  # partitions or tables that could not be read
    reread_consistency: str | None
    settle_s: float
    duration_s: float
    proxy: dict[str, Any] = field(default_factory=dict)

    @property
    def passed_unread(self) -> dict[str, int]:
        """What the proxy relayed without reading it (connections, frames, requests): writes in it
        may be missing from the capture. Connections refused at STARTUP wrote nothing: not counted."""
        counts = self.proxy.get("not_followed") or {}
        return {k: int(n) for k, n in counts.items() if k in _UNREAD_STREAMS and n}

    @property
    def exit_code(self) -> ExitCode:
        """1 when a write was lost or a claim is silent; else 5 when something was unread (a
        partition by verification, or a stream by the proxy); else 0."""
        if self.counts.get(WriteClass.LOST.value, 0) or self.counts.get("silent", 0):
            return ExitCode.EXPECTATIONS_UNMET
        return ExitCode.INCONCLUSIVE if self.unread or self.passed_unread else ExitCode.OK

    @property
    def verdict(self) -> str:
        """One line for people."""
        lost, silent = self.counts.get("lost", 0), self.counts.get("silent", 0)
        if lost or silent:
            return f"{lost} acknowledged writes lost, {silent} claimed writes silent"
        if self.unread:
            return f"inconclusive: {len(self.unread)} partitions or tables could not be read"
        if self.passed_unread:
            unread = ", ".join(f"{n} {what}" for what, n in self.passed_unread.items())
            return f"inconclusive: the proxy relayed {unread} unread; their writes are not in the capture"
        return "no acknowledged write lost, nothing silent"

    def to_json(self) -> dict[str, Any]:
        """result.json: the run schema's shape (counts, records, injectors) for a capture."""
        return {
            "kind": "capture",
            "capture": self.capture,
            "exit_code": int(self.exit_code),
            "verdict": self.verdict,
            "counts": self.counts,
            "records": [r.to_json() for r in self.records],
            "injectors": self.injectors,
            "unverifiable_reasons": self.unverifiable_reasons,
            "verification": {
                "settle_s": self.settle_s,
                "reread_consistency": self.reread_consistency,
                "unread": list(self.unread),
                "duration_s": round(self.duration_s, 3),
            },
            "proxy": self.proxy,
        }


def verify_capture(
    directory: Path,
    session_or_factory: Any,
    claims: Claims | None = None,
    out: Path | None = None,
    *,
    settle_s: float = 1.0,
    read_consistency: str = "LOCAL_QUORUM",
    concurrency: int = 64,
    source: Path | None = None,
) -> CaptureResult:
    """Classify every captured write of `directory` against the database; write OUT/result.json.

    A proxy's capture is read through `standalone.taped.complete_capture` (its tape replayed,
    maybe into a copy): `source` is then the capture as the user named it.
    """
    started = time.monotonic()
    session = session_or_factory if hasattr(session_or_factory, "execute") else session_or_factory()
    tally = Tally()
    with CaptureReader(directory) as reader:
        raw = RawSession(session)
        meta = reader.meta()
        entries = {(e.keyspace, e.table): e for e in reader.table_entries()}
        claim_table = (claims.keyspace, claims.table) if claims is not None else None
        tables = list(entries)
        if claim_table is not None and claim_table not in entries:
            tables.append(claim_table)
        for keyspace, table in tables:
            claimed = (
                claimed_keys(session, claims)
                if claims is not None and (keyspace, table) == claim_table
                else {}
            )
            verification = TableVerification(
                session, raw, reader, keyspace, table, entries.get((keyspace, table)), claimed, tally,
                read_consistency, concurrency, SCAN_FROM_KEYS,
            )  # fmt: skip
            try:
                verification.run(settle_s)
            except BaseException:
                raw.close()
                raise
        raw.close()
        unverifiable = reader.unverifiable()
    reasons = Counter(u.reason for u in unverifiable)
    tally.counts[WriteClass.UNVERIFIABLE.value] += len(unverifiable)
    tally.counts["captured"] += len(unverifiable)
    for name in [c.value for c in WriteClass] + ["captured", "told_success", "present", "silent"]:
        tally.counts.setdefault(name, 0)
    if claims is None:
        del tally.counts[WriteClass.NEVER_SENT.value]
    result = CaptureResult(
        capture=str(source or directory),
        counts=dict(tally.counts),
        records=tuple(tally.records),
        injectors=_json_list(meta.get("injectors")),
        unverifiable_reasons=dict(reasons),
        unread=tuple(tally.unread),
        reread_consistency=tally.reread_consistency,
        settle_s=settle_s,
        duration_s=time.monotonic() - started,
        proxy=_json_dict(meta.get("proxy")),
    )
    if out is not None:
        write_result(result, out)
    return result


def write_result(result: CaptureResult, out: Path) -> Path:
    """Write `OUT/result.json` (never over another kind of result)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "result.json"
    if path.exists():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            previous = {}
        if previous.get("kind") != "capture":
            raise EnvironmentProblem(f"{path} holds another result; give --out a directory of its own")
    path.write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _json_list(text: str | None) -> list[dict[str, Any]]:
    if not text:
        return []
    value = json.loads(text)
    return value if isinstance(value, list) else []


def _json_dict(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {}
