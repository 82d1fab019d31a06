"""Read every captured key back and classify every captured write (and the app's own claims).

Per table: the captured writes are grouped by key and their partitions read once each (first at
`read_consistency`); keys not found as written wait `settle_s` and are read again at the
strongest level (ALL, else QUORUM), as run verification does. Classes are in `WriteClass`.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any

from astrachaos.capture.keys import key_identity, value_digest
from astrachaos.capture.ledger import CaptureReader
from astrachaos.capture.model import StoredWrite, Told, WriteClass, WriteKind
from astrachaos.errors import EnvironmentProblem, ExitCode
from astrachaos.reconcile.keyfile import KeySpec, read_keys
from astrachaos.reconcile.lookup import key_columns
from astrachaos.reconcile.schema import TableSchema, cast, encode, read_schema

log = logging.getLogger(__name__)

_AS_WRITTEN = (WriteClass.OK, WriteClass.RECOVERED, WriteClass.OVERWRITTEN)
SCAN_FROM_KEYS = 50_000  # from this many captured keys in a table, read it whole (paged) instead


@dataclass(frozen=True)
class Claims:
    """The application's own claims: keys it logged as stored (a log or a key file) in one table."""

    path: Path
    spec: KeySpec
    keyspace: str
    table: str


@dataclass(frozen=True)
class CaptureRecord:
    """One write (or claimed key) that is not ok."""

    keyspace: str
    table: str
    key: dict[str, Any]  # JSON-safe
    write_class: WriteClass
    silent: bool
    told: str | None
    error: str | None
    fault: str | None
    attempts: int
    kind: str | None = None
    connection: str | None = None
    stream: int | None = None
    sent_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as result.json holds it."""
        return {
            "key": self.key, "keyspace": self.keyspace, "table": self.table,
            "class": self.write_class.value, "silent": self.silent, "told": self.told,
            "error": self.error, "fault": self.fault, "attempts": self.attempts, "kind": self.kind,
            "connection": self.connection, "stream": self.stream, "sent_at": self.sent_at,
        }  # fmt: skip


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
    def exit_code(self) -> ExitCode:
        """1 when a write was lost or a claim is silent; else 5 when something was unread; else 0."""
        if self.counts.get(WriteClass.LOST.value, 0) or self.counts.get("silent", 0):
            return ExitCode.EXPECTATIONS_UNMET
        return ExitCode.INCONCLUSIVE if self.unread else ExitCode.OK

    @property
    def verdict(self) -> str:
        """One line for people."""
        lost, silent = self.counts.get("lost", 0), self.counts.get("silent", 0)
        if lost or silent:
            return f"{lost} acknowledged writes lost, {silent} claimed writes silent"
        if self.unread:
            return f"inconclusive: {len(self.unread)} partitions or tables could not be read"
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


@dataclass
class _Tally:
    counts: Counter[str] = field(default_factory=Counter)
    records: list[CaptureRecord] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)
    reread_consistency: str | None = None


def verify_capture(
    directory: Path,
    session_or_factory: Any,
    claims: Claims | None = None,
    out: Path | None = None,
    *,
    settle_s: float = 1.0,
    read_consistency: str = "LOCAL_QUORUM",
    concurrency: int = 64,
) -> CaptureResult:
    """Classify every captured write of `directory` against the database; write OUT/result.json."""
    started = time.monotonic()
    session = session_or_factory if hasattr(session_or_factory, "execute") else session_or_factory()
    tally = _Tally()
    with CaptureReader(directory) as reader:
        meta = reader.meta()
        tables = reader.tables()
        claimed = _claimed(session, claims) if claims is not None else {}
        claim_table = (claims.keyspace, claims.table) if claims is not None else None
        if claim_table is not None and claim_table not in tables:
            tables.append(claim_table)
        for keyspace, table in tables:
            wanted = claimed if (keyspace, table) == claim_table else {}
            _verify_table(
                session, reader, keyspace, table, wanted, tally, settle_s, read_consistency, concurrency
            )
        unverifiable = reader.unverifiable()
    reasons = Counter(u.reason for u in unverifiable)
    tally.counts[WriteClass.UNVERIFIABLE.value] += len(unverifiable)
    tally.counts["captured"] += len(unverifiable)
    for name in [c.value for c in WriteClass] + ["captured", "told_success", "present", "silent"]:
        tally.counts.setdefault(name, 0)
    if claims is None:
        del tally.counts[WriteClass.NEVER_SENT.value]
    result = CaptureResult(
        capture=str(directory),
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


def _claimed(session: Any, claims: Claims) -> dict[str, dict[str, Any]]:
    schema = read_schema(session, claims.keyspace, claims.table)
    columns = key_columns(schema, claims.spec.columns)
    if len(columns) != len(schema.primary_key):
        raise EnvironmentProblem("--key must name every primary-key column to judge captured writes")
    keys: dict[str, dict[str, Any]] = {}
    for raw in read_keys(claims.path, claims.spec):
        typed = {c.name: cast(c, raw[c.name]) for c in columns}
        keys.setdefault(key_identity(typed), typed)
    return keys


def _verify_table(
    session: Any, reader: CaptureReader, keyspace: str, table: str, claimed: dict[str, dict[str, Any]],
    tally: _Tally, settle_s: float, consistency: str, concurrency: int,
) -> None:  # fmt: skip
    try:
        schema = read_schema(session, keyspace, table)
    except EnvironmentProblem as error:
        log.warning("%s", error)
        tally.unread.append(f"{keyspace}.{table}")
        writes = list(reader.writes(keyspace, table))
        tally.counts["captured"] += len(writes)
        return
    by_key: dict[str, list[StoredWrite]] = {
        identity: list(group) for identity, group in groupby(reader.writes(keyspace, table), _identity)
    }
    keys = {identity: dict(writes[0].write.key) for identity, writes in by_key.items()}
    for identity, key in claimed.items():
        keys.setdefault(identity, key)
    value_columns = sorted({c for ws in by_key.values() for w in ws for c in w.write.value_columns})
    read = _PartitionRead(session, schema, value_columns, concurrency)
    if len(keys) >= SCAN_FROM_KEYS:
        rows = read.scan(keys, consistency, tally)  # one pass over the table beats a read per partition
    else:
        rows = read.rows(keys.values(), consistency, tally)
    doubtful = [k for k in keys if not _settled(by_key.get(k, []), rows.get(k))]
    if doubtful:
        time.sleep(settle_s)
        for level in ("ALL", "QUORUM"):
            try:
                again = read.rows([keys[k] for k in doubtful], level, None)
            except Exception as error:
                log.warning("re-read at %s failed: %s", level, error)
                continue
            tally.reread_consistency = tally.reread_consistency or level
            for identity in doubtful:
                rows[identity] = again.get(identity)
            break
    unread = set(read.unread)
    for identity, key in keys.items():
        if _partition(schema, key) in unread:
            continue
        _classify_key(schema, key, by_key.get(identity, []), rows.get(identity), identity in claimed, tally)


def _identity(stored: StoredWrite) -> str:
    return key_identity(stored.write.key)


def _partition(schema: TableSchema, key: dict[str, Any]) -> str:
    return key_identity({c.name: key[c.name] for c in schema.partition_key})


def _settled(writes: list[StoredWrite], row: dict[str, Any] | None) -> bool:
    if not writes:
        return row is not None
    return all(_as_written(w, row) for w in writes)


def _as_written(stored: StoredWrite, row: dict[str, Any] | None) -> bool:
    write = stored.write
    if write.kind is WriteKind.DELETE:
        return row is None
    if row is None:
        return False
    if write.value_digest is None:
        return True
    return value_digest({c: row.get(c) for c in write.value_columns}) == write.value_digest


def _order(stored: StoredWrite) -> tuple[float, int]:
    write = stored.write
    at = write.write_timestamp if write.write_timestamp is not None else write.sent_at * 1e6
    return (float(at), stored.id)


def _classify_key(
    schema: TableSchema, key: dict[str, Any], writes: list[StoredWrite], row: dict[str, Any] | None,
    claimed: bool, tally: _Tally,
) -> None:  # fmt: skip
    shown = {c: encode(v) for c, v in key.items()}
    if row is not None:
        tally.counts["present"] += 1
    if not writes:  # claimed, never reached the proxy
        tally.counts[WriteClass.NEVER_SENT.value] += 1
        silent = row is None
        tally.counts["silent"] += int(silent)
        tally.records.append(CaptureRecord(schema.keyspace, schema.table, shown, WriteClass.NEVER_SENT,
                                           silent, None, None, None, 0))  # fmt: skip
        return
    ordered = sorted(writes, key=_order)
    classes = [_class_of(w, ordered[i + 1 :], row) for i, w in enumerate(ordered)]
    silent = claimed and not any(c in _AS_WRITTEN for c in classes if c is not WriteClass.DELETED)
    tally.counts["silent"] += int(silent)
    for stored, write_class in zip(ordered, classes, strict=True):
        tally.counts["captured"] += 1
        tally.counts[write_class.value] += 1
        tally.counts["told_success"] += int(stored.answer.told is Told.RESULT)
        if write_class is WriteClass.OK and not silent:
            continue
        answer, write = stored.answer, stored.write
        error = None if answer.error_class is None else f"{answer.error_class}: {answer.error_message or ''}"
        tally.records.append(
            CaptureRecord(
                schema.keyspace,
                schema.table,
                shown,
                write_class,
                silent,
                answer.told.value,
                error,
                write.fault,
                len(ordered),
                write.kind.value,
                write.connection,
                write.stream,
                write.sent_at,
            )
        )


def _class_of(stored: StoredWrite, later: Sequence[StoredWrite], row: dict[str, Any] | None) -> WriteClass:
    told = stored.answer.told
    rewritten_later = any(w.write.kind is not WriteKind.DELETE for w in later)
    if told is not Told.RESULT and row is not None and rewritten_later:
        return WriteClass.OVERWRITTEN  # a later attempt (a retry) or another write took the key
    if _as_written(stored, row):
        return WriteClass.OK if told is Told.RESULT else WriteClass.RECOVERED
    if row is not None and any(w.write.kind is not WriteKind.DELETE for w in later):
        return WriteClass.OVERWRITTEN
    if row is not None and _newer_in_table(stored, row):
        return WriteClass.OVERWRITTEN  # a write the capture could not key (or another client) won
    if row is None and any(w.write.kind is WriteKind.DELETE for w in later):
        return WriteClass.DELETED
    match told:
        case Told.RESULT:
            return WriteClass.LOST
        case Told.ERROR:
            return WriteClass.FAILED
        case Told.CLOSED | Told.NO_ANSWER:
            return WriteClass.INDETERMINATE


def _newer_in_table(stored: StoredWrite, row: dict[str, Any]) -> bool:
    """Whether a value column holds a write newer than this one (by write timestamps)."""
    timestamp = stored.write.write_timestamp
    if timestamp is None:
        return False
    written = [row.get(f"writetime({c})") for c in stored.write.value_columns]
    return any(isinstance(w, int) and w > timestamp for w in written)


class _PartitionRead:
    """Reads whole partitions of one table, the key and the captured value columns of each row."""

    def __init__(self, session: Any, schema: TableSchema, value_columns: Sequence[str], concurrency: int):
        known = {c.name for c in schema.values}
        self.schema = schema
        values = [c for c in value_columns if c in known]
        timed = [c for c in values if not schema.column(c).multi_cell]
        self.columns = [c.name for c in schema.primary_key] + values + [f"writetime({c})" for c in timed]
        selected = ", ".join(
            [schema.column(c).quoted for c in [c.name for c in schema.primary_key] + values]
            + [f"WRITETIME({schema.column(c).quoted})" for c in timed]
        )
        where = " AND ".join(f"{c.quoted} = ?" for c in schema.partition_key)
        self.statement = session.prepare(f"SELECT {selected} FROM {schema.qualified} WHERE {where}")
        self.session = session
        self.concurrency = concurrency
        self.unread: list[str] = []

    def rows(
        self, keys: Iterable[dict[str, Any]], consistency: str, tally: _Tally | None
    ) -> dict[str, dict[str, Any] | None]:
        """Key identity → the stored row (None when absent) for every partition of `keys`."""
        from cassandra import ConsistencyLevel
        from cassandra.concurrent import execute_concurrent_with_args

        partitions: dict[str, tuple[Any, ...]] = {}
        for key in keys:
            values = tuple(key[c.name] for c in self.schema.partition_key)
            partitions.setdefault(_partition(self.schema, key), values)
        self.statement.consistency_level = ConsistencyLevel.name_to_value[consistency]
        found: dict[str, dict[str, Any] | None] = defaultdict(lambda: None)
        names = list(partitions)
        results = execute_concurrent_with_args(
            self.session, self.statement, list(partitions.values()), concurrency=self.concurrency,
            raise_on_first_error=tally is None,
        )  # fmt: skip
        pk = [c.name for c in self.schema.primary_key]
        for name, result in zip(names, results, strict=True):
            if not result.success:
                log.warning("partition %s unread: %s", name, result.result_or_exc)
                if tally is not None:
                    tally.unread.append(name)
                    self.unread.append(name)
                continue
            for row in _all_rows(result.result_or_exc):
                stored = dict(zip(self.columns, row, strict=True))
                found[key_identity({c: stored[c] for c in pk})] = stored
        return found


    def scan(
        self, keys: dict[str, dict[str, Any]], consistency: str, tally: _Tally
    ) -> dict[str, dict[str, Any] | None]:
        """The stored rows of `keys`, found by one paged pass over the whole table."""
        from cassandra import ConsistencyLevel
        from cassandra.query import SimpleStatement

        pk = [c.name for c in self.schema.primary_key]
        statement = SimpleStatement(
            self.statement.query_string.split(" WHERE ")[0],
            consistency_level=ConsistencyLevel.name_to_value[consistency],
            fetch_size=5000,
        )
        found: dict[str, dict[str, Any] | None] = defaultdict(lambda: None)
        try:
            for row in self.session.execute(statement, timeout=120):
                stored = dict(zip(self.columns, row, strict=True))
                identity = key_identity({c: stored[c] for c in pk})
                if identity in keys:
                    found[identity] = stored
        except Exception as error:  # the scan is cut: every partition counts as unread
            log.warning("scan of %s failed: %s", self.schema.qualified, error)
            for key in keys.values():
                name = _partition(self.schema, key)
                tally.unread.append(name)
                self.unread.append(name)
        return found


def _all_rows(result: Any) -> Iterator[tuple[Any, ...]]:
    yield from result


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
