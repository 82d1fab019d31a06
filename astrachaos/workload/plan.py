"""The records a run means to write: ids, keys, payloads and their digests, per writer and batch."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from xxhash import xxh3_64_hexdigest

from astrachaos.events import RECORD_DIGEST, Record
from astrachaos.scenario import KeyStrategy, Workload

_SPECIAL = 'it\'s "quoted"; ñandú — 数据 🚀\n\ttab\\slash '


def payload_for(run_id: str, record_id: int, size: int, special: bool) -> str:
    """The payload of a record: a pure function of the run and the record, so it can be re-derived."""
    head = f"{run_id}:{record_id}:"
    if special:
        head += _SPECIAL
    if len(head) >= size:
        return head
    return head + "x" * (size - len(head))


DIGEST = RECORD_DIGEST  # recorded in every ledger's meta; a ledger without it used blake2b-64
Digest = Callable[[int, "int | None", "str | None"], str]


def digest_of(key: int, record_id: int | None, payload: str | None) -> str:
    """What a row holds, as 16 hex digits: its key, record_id and payload (None: a null column).

    One string settles whether a row is a record's own, as written: verification intersects the
    digests a partition holds with those the ledger planned there. XXH3 (64 bits): computed once
    per record written and once per row read, it costs a third of BLAKE2b.
    """
    if payload is None:
        return "null"
    return xxh3_64_hexdigest(f"{key}:{record_id}:{payload}".encode())


def blake2b_digest_of(key: int, record_id: int | None, payload: str | None) -> str:
    """The digest of ledgers written before XXH3 (their meta names no digest)."""
    if payload is None:
        return "null"
    row = f"{key}:{record_id}:{payload}"
    return hashlib.blake2b(row.encode("utf-8"), digest_size=8).hexdigest()


def digest_named(name: str | None) -> Digest:
    """The digest function a ledger's meta names (None: one written before the name was kept)."""
    return digest_of if name == DIGEST else blake2b_digest_of


def applied_digest(digest: str, applications: int) -> str:
    """The digest of a row whose write was applied `applications` times (e.g. `1f…e3*2`).

    A row its record's write reached twice holds that record's value, yet is not as written: the
    suffix keeps it out of the join with the planned digests, which are those of one application.
    """
    return digest if applications <= 1 else f"{digest}*{applications}"


@dataclass(frozen=True, slots=True)
class PlannedRecord:
    """A record with its payload, as handed to the application."""

    record: Record
    payload: str


class RecordPlan:
    """Splits a workload among writers and makes each writer's batches on demand (bounded memory)."""

    def __init__(self, workload: Workload, run_id: str, buckets: int, random_seed: int) -> None:
        self.workload = workload
        self.run_id = run_id
        self.buckets = buckets
        self.random_seed = random_seed

    def share(self, writer: int) -> range:
        """The record ids writer `writer` owns: contiguous, the remainder spread over the first."""
        total, writers = self.workload.records, self.workload.writers
        base, extra = divmod(total, writers)
        start = writer * base + min(writer, extra)
        return range(start, start + base + (1 if writer < extra else 0))

    def batches(self, writer: int) -> Iterator[list[PlannedRecord]]:
        """Writer `writer`'s records in batches of `batch_size`, keys made when the batch is made."""
        ids = self.share(writer)
        size = self.workload.batch_size
        for batch, start in enumerate(range(ids.start, ids.stop, size)):
            yield self._batch(writer, batch, range(start, min(start + size, ids.stop)))

    def _batch(self, writer: int, batch: int, record_ids: range) -> list[PlannedRecord]:
        # Per record, millions of times: the workload's settings are read once per batch.
        workload, buckets, run_id = self.workload, self.buckets, self.run_id
        strategy, size, special = workload.key_strategy, workload.payload_bytes, workload.special_characters
        first_of_writer = self.share(writer).start
        planned = []
        for record_id in record_ids:
            if strategy is KeyStrategy.TIMESTAMP_MS:
                key = time.time_ns() // 1_000_000  # what real apps do, and why they collide
            elif strategy is KeyStrategy.SHARED:
                key = record_id - first_of_writer  # every writer updates the same keys
            else:
                key = record_id
            payload = payload_for(run_id, record_id, size, special)
            record = Record(record_id, writer, batch, key % buckets, key, digest_of(key, record_id, payload))
            planned.append(PlannedRecord(record, payload))
        return planned

    def rng(self, writer: int) -> random.Random:
        """A per-writer random source derived from the run seed (repeatable runs)."""
        return random.Random(self.random_seed * 1_000_003 + writer)
