"""What a statement writes, read before it is sent: bound, simple with parameters, literal, batch."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

from cassandra.cqltypes import Int32Type, UTF8Type
from cassandra.protocol import ColumnMetadata
from cassandra.query import BatchStatement, PreparedStatement, SimpleStatement

from astrachaos.dropin.literals import parse_literal
from astrachaos.dropin.statements import rows_written

SESSION = SimpleNamespace(keyspace="shop", cluster=SimpleNamespace(_prepared_statements={}))


def prepared(cql: str, *columns: tuple[str, Any]) -> PreparedStatement:
    metadata = [ColumnMetadata("shop", "orders", name, kind) for name, kind in columns]
    statement = PreparedStatement(metadata, uuid.uuid4().bytes, [0], cql, "shop", 5, None, None)
    SESSION.cluster._prepared_statements[statement.query_id] = statement
    return statement


INSERT = prepared(
    "INSERT INTO shop.orders (customer, order_id, note) VALUES (?, ?, ?)",
    ("customer", UTF8Type), ("order_id", Int32Type), ("note", UTF8Type),
)  # fmt: skip


def test_a_bound_insert_gives_its_columns_decoded_from_the_bound_bytes() -> None:
    (row,) = rows_written(INSERT.bind(("ann", 7, "hi")), None, SESSION) or []
    assert (row.keyspace, row.table, row.kind) == ("shop", "orders", "insert")
    assert dict(row.values) == {"customer": "ann", "order_id": 7, "note": "hi"}
    assert row.reason is None and row.comparable and not row.conditional


def test_a_prepared_statement_with_parameters_is_bound_first() -> None:
    (row,) = rows_written(INSERT, ("bob", 1, None), SESSION) or []
    assert dict(row.values) == {"customer": "bob", "order_id": 1, "note": None}


def test_the_timestamp_marker_is_not_a_column_and_an_increment_is_not_comparable() -> None:
    update = prepared(
        "UPDATE shop.orders USING TIMESTAMP ? SET hits = hits + ? WHERE customer = ? AND order_id = ?",
        ("[timestamp]", Int32Type), ("hits", Int32Type), ("customer", UTF8Type), ("order_id", Int32Type),
    )  # fmt: skip
    (row,) = rows_written(update.bind((1, 2, "c", 3)), None, SESSION) or []
    assert "[timestamp]" not in row.values and row.values["customer"] == "c"
    assert not row.comparable


def test_a_simple_insert_takes_positional_and_named_parameters() -> None:
    cql = "INSERT INTO orders (customer, order_id, note) VALUES (%s, %s, %s)"
    (row,) = rows_written(cql, ("ann", 2, "x"), SESSION) or []
    assert (row.keyspace, row.table) == ("shop", "orders")  # the session's keyspace
    assert dict(row.values) == {"customer": "ann", "order_id": 2, "note": "x"}
    named = SimpleStatement("INSERT INTO other.t (a, b) VALUES (%(a)s, 'lit''eral')")
    (row,) = rows_written(named, {"a": 5}, SESSION) or []
    assert (row.keyspace, row.table, dict(row.values)) == ("other", "t", {"a": 5, "b": "lit'eral"})


def test_a_simple_update_reads_set_and_where_with_markers_in_order() -> None:
    cql = (
        "UPDATE shop.orders USING TTL %s SET note = %s, hits = hits + %s"
        " WHERE customer = %s AND order_id = %s"
    )
    (row,) = rows_written(cql, (60, "n", 1, "ann", 4), SESSION) or []
    assert dict(row.values) == {"note": "n", "customer": "ann", "order_id": 4}
    assert not row.comparable  # the increment cannot be compared with what the table holds


def test_deletes_of_rows_and_of_columns() -> None:
    where = "FROM shop.orders WHERE customer = 'a' AND order_id = 1"
    (row,) = rows_written(f"DELETE {where}", None, SESSION) or []
    assert row.kind == "delete" and dict(row.values) == {"customer": "a", "order_id": 1}
    (row,) = rows_written(f"DELETE note {where}", None, SESSION) or []
    assert row.reason == "DELETE of some columns only"


def test_conditional_writes_are_marked() -> None:
    (row,) = rows_written("INSERT INTO t (a) VALUES (1) IF NOT EXISTS", None, SESSION) or []
    assert row.conditional and dict(row.values) == {"a": 1}
    (row,) = rows_written("UPDATE t SET b = 2 WHERE a = 1 IF b = 1", None, SESSION) or []
    assert row.conditional


def test_reads_and_schema_changes_write_nothing() -> None:
    assert rows_written("SELECT * FROM shop.orders", None, SESSION) is None
    assert rows_written("CREATE TABLE x (a int PRIMARY KEY)", None, SESSION) is None
    assert rows_written(SimpleStatement("select 1 from system.local"), None, SESSION) is None


def test_a_batch_gives_every_row_prepared_or_simple() -> None:
    batch = BatchStatement()
    batch.add(INSERT, ("a", 1, "x"))
    batch.add(INSERT.bind(("a", 2, "y")))
    batch.add("INSERT INTO shop.orders (customer, order_id) VALUES (%s, %s)", ("a", 3))
    rows = rows_written(batch, None, SESSION) or []
    assert [r.values["order_id"] for r in rows] == [1, 2, 3]


def test_what_cannot_be_read_is_reported_with_a_reason() -> None:
    (row,) = rows_written("BEGIN BATCH INSERT INTO t (a) VALUES (1); APPLY BATCH", None, SESSION) or []
    assert row.reason is not None
    (row,) = rows_written("INSERT INTO t (a, b) VALUES (now(), 1)", None, SESSION) or []
    assert row.reason is not None and "not a literal" in row.reason
    (row,) = rows_written("INSERT INTO t (a, b) VALUES (%s, %s)", (1,), SESSION) or []
    assert row.reason is not None and "fewer parameters" in row.reason


def test_literals() -> None:
    assert parse_literal("'it''s'") == "it's"
    assert parse_literal("-12") == -12 and parse_literal("1.5") == 1.5 and parse_literal("1e3") == 1000.0
    assert parse_literal("true") is True and parse_literal("NULL") is None
    assert parse_literal("0xcafe") == b"\xca\xfe"
    text = "123e4567-e89b-12d3-a456-426614174000"
    assert parse_literal(text) == uuid.UUID(text)
