"""Expected keys from CSV, JSON lines (field paths, lists of tuples, line filters) and a regex."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from pathlib import Path

import pytest

from astrachaos.errors import UsageProblem
from astrachaos.reconcile.keyfile import KeyFormat, KeySpec, read_keys
from astrachaos.reconcile.schema import Column, cast, encode


def test_csv_keys_by_header(tmp_path: Path) -> None:
    path = tmp_path / "k.csv"
    path.write_text('id,name,other\n1,"a, ""q""",x\n2,ü,y\n', encoding="utf-8")
    keys = list(read_keys(path, KeySpec(("id", "name"), KeyFormat.CSV)))
    assert keys == [{"id": "1", "name": 'a, "q"'}, {"id": "2", "name": "ü"}]


def test_app_log_keys_are_lists_of_tuples_with_a_fixed_run_id(tmp_path: Path) -> None:
    path = tmp_path / "app.log.jsonl"
    path.write_text(
        '{"level": "info", "keys": [[0, 16], [1, 17]]}\n'
        '{"level": "error", "keys": [[2, 18]]}\n'
        '{"level": "info", "msg": "no keys"}\n'
    )
    spec = KeySpec(("run_id", "bucket", "key"), KeyFormat.JSONL, key_path="keys",
                   match={"level": "info"}, fixed={"run_id": "R"})  # fmt: skip
    assert list(read_keys(path, spec)) == [
        {"bucket": 0, "key": 16, "run_id": "R"},
        {"bucket": 1, "key": 17, "run_id": "R"},
    ]


def test_regex_named_groups(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("stored id=7 and id=8\nnothing\n")
    spec = KeySpec(("id",), KeyFormat.REGEX, regex=r"id=(?P<id>\d+)")
    assert list(read_keys(path, spec)) == [{"id": "7"}, {"id": "8"}]


def test_text_is_cast_by_column_type() -> None:
    assert cast(Column("k", "bigint", "partition_key"), " 42 ") == 42
    assert cast(Column("k", "uuid", "clustering"), str(uuid.UUID(int=5))) == uuid.UUID(int=5)
    assert cast(Column("k", "decimal", "clustering"), "1.50") == decimal.Decimal("1.50")
    stamp = cast(Column("k", "timestamp", "clustering"), "2024-01-01T00:00:01.500Z")
    assert stamp == dt.datetime(2024, 1, 1, 0, 0, 1, 500000, tzinfo=dt.UTC)
    assert cast(Column("k", "blob", "clustering"), "0x00ff") == b"\x00\xff"
    with pytest.raises(UsageProblem, match="cannot read"):
        cast(Column("k", "int", "partition_key"), "seven")


def test_values_encode_to_json_safe_forms() -> None:
    assert encode(dt.datetime(2024, 1, 1, 0, 0, 1, 500000)) == "2024-01-01T00:00:01.500Z"
    assert encode(decimal.Decimal("-0.001")) == "-0.001"
    assert encode(b"\x00\xff") == "00ff"
    assert encode({"a": {1, 2}}) == {"a": [1, 2]}
    assert encode(float("nan")) == "nan"
