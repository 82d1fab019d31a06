"""One table of a capture against the database: token ranges summed in SQLite, or partition by partition."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from itertools import groupby
from typing import Any

from astrachaos.capture.cells import KeyCodec, cells_digest, fingerprint, is_native, murmur3_token, serialize
from astrachaos.capture.judge import Judge, Row, Tally, Write
from astrachaos.capture.model import Told, WriteClass
from astrachaos.capture.reader import WRITE_COLUMNS, WRITES_JOINED, CaptureReader, TableEntry
from astrachaos.capture.reads import RawRows, RawSession
from astrachaos.errors import EnvironmentProblem
from astrachaos.reconcile.lookup import key_columns
from astrachaos.reconcile.schema import Column, TableSchema, cast, encode, read_schema

log = logging.getLogger(__name__)

WRITES_PER_RANGE = 2_000
PARTITIONS_PER_READ = 2_000
RANGE_READ_FACTOR = 20  # a partition read costs about as much as scanning this many partitions
_RESULT = Told.RESULT.value


def claimed_keys(session: Any, claims: Any) -> dict[bytes, dict[str, Any]]:
    """The app's claimed keys of its table: key cells joined → typed key."""
    from astrachaos.reconcile.keyfile import read_keys

    schema = read_schema(session, claims.keyspace, claims.table)
    columns = key_columns(schema, claims.spec.columns)
    if len(columns) != len(schema.primary_key):
        raise EnvironmentProblem("--key must name every primary-key column to judge captured writes")
    codec = _codec(schema)
    keys: dict[bytes, dict[str, Any]] = {}
    for raw in read_keys(claims.path, claims.spec):
        typed = {c.name: cast(c, raw[c.name]) for c in columns}
        cells = [serialize(typed[c.name], c.cql_type) for c in schema.primary_key]
        keys.setdefault(codec.join(cells), typed)
    return keys


def _codec(schema: TableSchema) -> KeyCodec:
    return KeyCodec([c.cql_type for c in schema.primary_key], len(schema.partition_key))


class TableVerification:
    """Reads one table's captured keys back and classifies its writes into `tally`."""

    def __init__(
        self, session: Any, raw: RawSession, reader: CaptureReader, keyspace: str, table: str,
        entry: TableEntry | None, claimed: dict[bytes, dict[str, Any]], tally: Tally, consistency: str,
        concurrency: int, scan_from: int,
    ) -> None:  # fmt: skip
        self.session, self.raw, self.reader = session, raw, reader
        self.keyspace, self.table, self.entry = keyspace, table, entry
        self.claimed, self.tally = claimed, tally
        self.consistency, self.concurrency, self.scan_from = consistency, concurrency, scan_from
        self.seen_claims: set[bytes] = set()
        self.doubtful: list[tuple[bytes, list[Write], Row | None]] = []

    def run(self, settle_s: float) -> None:
        """Read, classify, settle and read the doubtful keys again."""
        try:
            schema = read_schema(self.session, self.keyspace, self.table)
        except EnvironmentProblem as error:
            log.warning("%s", error)
            self.tally.unread.append(f"{self.keyspace}.{self.table}")
            if self.entry is not None:
                (count,) = self.reader.conn.execute(
                    "SELECT count(*) FROM writes WHERE table_id = ?", (self.entry.id,)
                ).fetchone()
                self.tally.counts["captured"] += count
            return
        self.schema = schema
        self.codec = _codec(schema)
        self.sets = self.reader.column_sets(self.entry.id) if self.entry is not None else {}
        values = sorted({c for columns in self.sets.values() for c in columns})
        self.rows = RawRows(self.raw, schema, values)
        self.judge = Judge(schema, self.sets, self.rows.values, self._shown, self.tally)
        with_token = 0
        if self.entry is not None:
            (with_token,) = self.reader.conn.execute(
                "SELECT count(*) FROM writes WHERE table_id = ? AND token IS NOT NULL", (self.entry.id,)
            ).fetchone()
        if with_token >= self.scan_from and _murmur3(self.session) and self._ranges_pay(with_token):
            self._by_ranges(with_token)
            self._by_partitions(self._writes("AND w.token IS NULL ORDER BY w.key, w.id"))
        else:
            self._by_partitions(self._writes("ORDER BY w.token, w.key, w.id"))
        leftover = [k for k in self.claimed if k not in self.seen_claims]
        self._by_partitions(iter(()), leftover)
        self._settle(settle_s)

    # -- token ranges -------------------------------------------------------------------------

    def _ranges_pay(self, writes: int) -> bool:
        """Whether reading the ranges that hold `writes` costs less than reading their partitions.

        A token range is read whole, so a few writes in a table far larger than them are read
        partition by partition; without an estimate (`system.size_estimates`) ranges are read.
        """
        estimate = _estimated_partitions(self.session, self.keyspace, self.table)
        return estimate is None or estimate <= RANGE_READ_FACTOR * writes

    def _by_ranges(self, writes: int) -> None:
        assert self.entry is not None
        bits = max(4, min(16, (max(1, writes // WRITES_PER_RANGE) - 1).bit_length()))
        shift = 64 - bits
        sums: dict[int, list[tuple[int | None, int, int, int, int]]] = {}
        for bucket, column_set, count, fingerprints, total, told_ok in self.reader.conn.execute(
            "SELECT w.token >> ?, w.column_set, count(*), count(w.fingerprint),"
            " coalesce(sum(w.fingerprint), 0),"
            f" sum(a.told = '{_RESULT}') {WRITES_JOINED} WHERE w.table_id = ? AND w.token IS NOT NULL"
            " GROUP BY 1, 2",
            (shift, self.entry.id),
        ):
            sums.setdefault(bucket, []).append((column_set, count, fingerprints, total, told_ok or 0))
        per_set: dict[int | None, int] = {}
        for groups in sums.values():
            for column_set, count, *_ in groups:
                per_set[column_set] = per_set.get(column_set, 0) + count
        usual = max(per_set, key=lambda s: per_set[s])
        claims: dict[int, list[bytes]] = {}
        for key in self.claimed:
            claims.setdefault(murmur3_token(self.codec.split(key)[: len(self.schema.partition_key)]) >> shift,
                              []).append(key)  # fmt: skip
        buckets = sorted(set(sums) | set(claims))
        ranges = [(b << shift, ((b + 1) << shift) - 1) for b in buckets]
        width = len(self.schema.primary_key)
        positions = self.judge.positions(usual)
        columns = self.sets.get(usual, ()) if usual is not None else ()
        native = positions is not None and all(is_native(self._type(c)) for c in columns)
        for index, outcome in self.rows.ranges(ranges, self.consistency):
            bucket = buckets[index]
            if isinstance(outcome, BaseException):
                log.warning("token range %s of %s unread: %s", ranges[index], self.schema.qualified, outcome)
                self.tally.unread.append(
                    f"{self.schema.qualified} tokens {ranges[index][0]}..{ranges[index][1]}"
                )
                self.seen_claims.update(claims.get(bucket, ()))
                continue
            groups = sums.get(bucket, [])
            if (
                native and positions is not None and bucket not in claims
                and len(groups) == 1 and groups[0][0] == usual
                and groups[0][1] == groups[0][2] == groups[0][4] == len(outcome)
                and _fingerprint_sum(outcome, self.codec, width, positions) == groups[0][3]
            ):  # fmt: skip
                count = len(outcome)  # every write told success and found as written
                for name in (WriteClass.OK.value, "captured", "told_success", "present"):
                    self.tally.counts[name] += count
                continue
            low, high = ranges[index]
            found = {self.codec.join(row[:width]): row for row in outcome}  # type: ignore[arg-type]
            in_range = self._writes("AND w.token BETWEEN ? AND ? ORDER BY w.token, w.key, w.id", low, high)
            self._judge_all(in_range, found, claims.get(bucket, ()))

    # -- partition by partition ---------------------------------------------------------------

    def _by_partitions(self, writes: Iterator[Write], claimed_only: Iterable[bytes] = ()) -> None:
        batch: list[tuple[bytes, list[Write]]] = []
        partitions: set[bytes] = set()

        def flush() -> None:
            found = self._read_partitions([k for k, _ in batch], self.consistency)
            for key, group in batch:
                if key in found:
                    self._judge_key(key, group, found[key])
            batch.clear()
            partitions.clear()

        groups = ((key, list(group)) for key, group in groupby(writes, key=lambda w: w.key))
        claimed: Iterator[tuple[bytes, list[Write]]] = ((key, []) for key in claimed_only)
        for key, group in _chain(groups, claimed):
            batch.append((key, group))
            partitions.add(self._partition_of(key))
            if len(partitions) >= PARTITIONS_PER_READ:
                flush()
        if batch:
            flush()

    def _read_partitions(self, keys: list[bytes], consistency: str) -> dict[bytes, Row | None]:
        """Key → its row (None: absent) for every key whose partition could be read."""
        width = len(self.schema.partition_key)
        partitions = {self._partition_of(k): self.codec.split(k)[:width] for k in keys}
        names = list(partitions)
        outcomes = self.rows.partitions([partitions[n] for n in names], consistency, self.concurrency)
        found: dict[bytes, Row | None] = {}
        unread: set[bytes] = set()
        full = len(self.schema.primary_key)
        for name, outcome in zip(names, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                log.warning("partition %s unread: %s", name.hex(), outcome)
                unread.add(name)
                self.tally.unread.append(f"{self.schema.qualified} partition {self._shown_partition(name)}")
                continue
            for row in outcome:
                found[self.codec.join(row[:full])] = row  # type: ignore[arg-type]
        return {k: found.get(k) for k in keys if self._partition_of(k) not in unread}

    # -- keys -----------------------------------------------------------------------------------

    def _judge_all(self, writes: Iterator[Write], found: dict[bytes, Row], claims: Iterable[bytes]) -> None:
        for key, group in groupby(writes, key=lambda w: w.key):
            self._judge_key(key, list(group), found.get(key))
        for key in claims:
            if key not in self.seen_claims:
                self._judge_key(key, [], found.get(key))

    def _judge_key(self, key: bytes, writes: list[Write], row: Row | None) -> None:
        if key in self.claimed:
            self.seen_claims.add(key)
        if self.judge.settled(writes, row):
            self.judge.classify(key, writes, row, key in self.claimed)
        else:
            self.doubtful.append((key, writes, row))

    def _settle(self, settle_s: float) -> None:
        if not self.doubtful:
            return
        time.sleep(settle_s)
        keys = [k for k, _, _ in self.doubtful]
        again: dict[bytes, Row | None] | None = None
        for level in ("ALL", "QUORUM"):
            try:
                again = self._read_partitions_strict(keys, level)
            except Exception as error:
                log.warning("re-read at %s failed: %s", level, error)
                continue
            self.tally.reread_consistency = self.tally.reread_consistency or level
            break
        for key, writes, row in self.doubtful:
            self.judge.classify(key, writes, again[key] if again is not None else row, key in self.claimed)
        self.doubtful = []

    def _read_partitions_strict(self, keys: list[bytes], level: str) -> dict[bytes, Row | None]:
        width = len(self.schema.partition_key)
        partitions = {self._partition_of(k): self.codec.split(k)[:width] for k in keys}
        names = list(partitions)
        found: dict[bytes, Row | None] = {}
        full = len(self.schema.primary_key)
        for start in range(0, len(names), PARTITIONS_PER_READ):
            chunk = names[start : start + PARTITIONS_PER_READ]
            for outcome in self.rows.partitions([partitions[n] for n in chunk], level, self.concurrency):
                if isinstance(outcome, BaseException):
                    raise outcome
                for row in outcome:
                    found[self.codec.join(row[:full])] = row  # type: ignore[arg-type]
        return {k: found.get(k) for k in keys}

    def _writes(self, where: str, *parameters: Any) -> Iterator[Write]:
        if self.entry is None:
            return iter(())
        rows = self.reader.conn.execute(
            f"SELECT {WRITE_COLUMNS} {WRITES_JOINED} WHERE w.table_id = ? {where}",
            (self.entry.id, *parameters),
        )
        return (Write(*row) for row in rows)

    def _type(self, column: str) -> str:
        return next((c.cql_type for c in self.schema.values if c.name == column), "")

    def _partition_of(self, key: bytes) -> bytes:
        cells = self.codec.split(key)[: len(self.schema.partition_key)]
        return b"".join(len(c).to_bytes(4, "big") + c for c in cells)

    def _shown(self, key: bytes) -> dict[str, Any]:
        if key in self.claimed:
            return {c: encode(v) for c, v in self.claimed[key].items()}
        try:
            cells = self.codec.split(key)
        except ValueError:
            return {"key": key.hex()}
        return {c.name: _value(c, cell) for c, cell in zip(self.schema.primary_key, cells, strict=True)}

    def _shown_partition(self, partition: bytes) -> str:
        cells, at = [], 0
        while at < len(partition):
            size = int.from_bytes(partition[at : at + 4], "big")
            cells.append(partition[at + 4 : at + 4 + size])
            at += 4 + size
        return str(
            {c.name: _value(c, cell) for c, cell in zip(self.schema.partition_key, cells, strict=False)}
        )


def _chain(*iterators: Iterable[Any]) -> Iterator[Any]:
    for iterator in iterators:
        yield from iterator


def _value(column: Column, cell: bytes) -> Any:
    from astrachaos.capture.cells import decode

    return encode(decode(cell, column.cql_type))


def _fingerprint_sum(rows: list[Row], codec: KeyCodec, width: int, positions: list[int]) -> int:
    """The sum of the rows' fingerprints, as the capture computed them for the usual column set."""
    join = b"".join if codec.simple else codec.join
    total = 0
    if len(positions) == 1:
        (at,) = positions
        for row in rows:
            total += fingerprint(join(row[:width]), cells_digest((row[at],)))  # type: ignore[arg-type]
        return total
    for row in rows:
        total += fingerprint(join(row[:width]), cells_digest([row[p] for p in positions]))  # type: ignore[arg-type]
    return total


def _murmur3(session: Any) -> bool:
    partitioner = getattr(getattr(session.cluster, "metadata", None), "partitioner", None) or ""
    return str(partitioner).endswith("Murmur3Partitioner")


def _estimated_partitions(session: Any, keyspace: str, table: str) -> int | None:
    """The table's partitions from the coordinator's `system.size_estimates`, scaled to the ring."""
    try:
        rows = list(
            session.execute(
                "SELECT range_start, range_end, partitions_count FROM system.size_estimates"
                " WHERE keyspace_name = %s AND table_name = %s",
                (keyspace, table),
            )
        )
    except Exception as error:  # not every service has it: read the ranges
        log.debug("no size estimates for %s.%s: %s", keyspace, table, error)
        return None
    covered, partitions = 0, 0
    for start, end, count in rows:
        width = (int(end) - int(start)) % 2**64
        covered += width or 2**64
        partitions += int(count or 0)
    if not rows or covered == 0 or partitions == 0:
        return None
    return int(partitions * min(2**64 / covered, 2**20))
