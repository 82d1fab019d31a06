"""The table astrachaos owns for run records: creation, ownership check, statements."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from astrachaos.errors import EnvironmentProblem, InvalidScenario, UsageProblem

OWNER_MARK = "owned by astrachaos: run records"
ASTRA_PREFIX = "astrachaos_"
_IDENTIFIER = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,47}$")


@dataclass(frozen=True)
class RunTable:
    """Where a run's records live: partitions (run_id, bucket), clustered by key."""

    keyspace: str
    name: str

    @property
    def qualified(self) -> str:
        """`keyspace.table` as it appears in CQL."""
        return f"{self.keyspace}.{self.name}"

    def insert_cql(self, ttl_s: int | None, if_not_exists: bool = False) -> str:
        """The parameterised insert of one record; the write timestamp is the client's clock.

        An explicit `USING TIMESTAMP ?` is what the driver does implicitly (client-side
        timestamps), made visible so a writer's clock can be skewed. Conditional (LWT) inserts
        cannot carry a timestamp.
        """
        cql = (
            f"INSERT INTO {self.qualified} (run_id, bucket, key, record_id, writer, batch_no, payload)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        if if_not_exists:
            cql += " IF NOT EXISTS"
            return cql + (f" USING TTL {int(ttl_s)}" if ttl_s else "")
        cql += " USING TIMESTAMP ?"
        if ttl_s:
            cql += f" AND TTL {int(ttl_s)}"
        return cql

    def append_cql(self, ttl_s: int | None) -> str:
        """The parameterised list append of one record: sets its row and appends its record_id.

        Never idempotent: the server gives each appended element its own time-based cell path,
        so every application of the statement lands, whatever its write timestamp.
        """
        using = f"USING TTL {int(ttl_s)} AND TIMESTAMP ?" if ttl_s else "USING TIMESTAMP ?"
        return (
            f"UPDATE {self.qualified} {using}"
            " SET record_id = ?, payload = ?, applied = applied + ?"
            " WHERE run_id = ? AND bucket = ? AND key = ?"
        )

    def partition_cql(self) -> str:
        """Read one partition of a run, in clustering order; never ALLOW FILTERING."""
        return (
            f"SELECT key, record_id, payload, applied FROM {self.qualified}"
            " WHERE run_id = ? AND bucket = ?"
        )


def run_table(keyspace: str, table: str, astra: bool) -> RunTable:
    """The run table for a target; on Astra (no keyspace creation) the table name is prefixed."""
    for what, value in (("keyspace", keyspace), ("schema.table", table)):
        if not _IDENTIFIER.match(value):
            raise InvalidScenario(f"{what} {value!r} is not a valid CQL identifier")
    name = table if not astra or table.startswith(ASTRA_PREFIX) else ASTRA_PREFIX + table
    return RunTable(keyspace, name)


def ensure_table(session: Any, table: RunTable, replication_factor: int, astra: bool) -> None:
    """Create the keyspace (not on Astra) and the table if absent; refuse a table we do not own."""
    if not astra:
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {table.keyspace} WITH replication = "
            f"{{'class': 'SimpleStrategy', 'replication_factor': {replication_factor}}}"
        )
    existing = _comment_of(session, table)
    if existing is None:
        session.execute(
            f"CREATE TABLE IF NOT EXISTS {table.qualified} ("
            " run_id text, bucket int, key bigint, record_id bigint, writer int, batch_no int,"
            " payload text, applied list<bigint>, PRIMARY KEY ((run_id, bucket), key))"
            f" WITH comment = '{OWNER_MARK}'"
        )
    elif existing != OWNER_MARK:
        raise EnvironmentProblem(
            f"table {table.qualified} exists and is not owned by astrachaos "
            f"(its comment is {existing!r}); astrachaos only writes to tables it created",
            hint="choose another table with --set schema.table=NAME",
        )
    elif not _has_column(session, table, "applied"):  # created before `append` existed
        try:
            session.execute(f"ALTER TABLE {table.qualified} ADD applied list<bigint>")
        except Exception:
            if not _has_column(session, table, "applied"):  # not a concurrent run adding it first
                raise


def drop_table(session: Any, table: RunTable) -> None:
    """Drop a table astrachaos owns (the CLI asks for --yes first); a missing one is an error."""
    existing = _comment_of(session, table)
    if existing is None:
        raise UsageProblem(f"table {table.qualified} does not exist; nothing was dropped")
    if existing != OWNER_MARK:
        raise EnvironmentProblem(f"refusing to drop {table.qualified}: not owned by astrachaos")
    session.execute(f"DROP TABLE {table.qualified}")


def _comment_of(session: Any, table: RunTable) -> str | None:
    row = session.execute(
        "SELECT comment FROM system_schema.tables WHERE keyspace_name = %s AND table_name = %s",
        (table.keyspace, table.name),
    ).one()
    return None if row is None else str(row.comment)


def _has_column(session: Any, table: RunTable, column: str) -> bool:
    row = session.execute(
        "SELECT column_name FROM system_schema.columns"
        " WHERE keyspace_name = %s AND table_name = %s AND column_name = %s",
        (table.keyspace, table.name, column),
    ).one()
    return row is not None
