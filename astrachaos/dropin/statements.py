"""What a driver statement writes: table, kind and the column values of each row it touches.

Read from the statement the application hands to the driver, before it is sent: a bound
statement through its prepared statement's metadata (keyspace, table, bind columns), a simple
statement from its CQL and parameters (the driver interpolates them client-side), a batch entry
by entry. A write whose table or values cannot be read is still reported, with `reason` set, so
it is counted unverifiable and never dropped silently.
"""

from __future__ import annotations

import contextlib
import re
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from astrachaos.dropin.literals import LiteralError, parse_literal

_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
_BEGIN_BATCH = re.compile(r"^\s*BEGIN\s+(UNLOGGED\s+|COUNTER\s+)?BATCH\b", re.IGNORECASE)
_NAME = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*)'
_TABLE = rf"(?P<table>{_NAME}(?:\s*\.\s*{_NAME})?)"
_INSERT = re.compile(
    rf"^\s*INSERT\s+INTO\s+{_TABLE}\s*\((?P<columns>[^)]*)\)\s*VALUES\s*\((?P<values>.*)\)",
    re.IGNORECASE | re.DOTALL,
)
_UPDATE = re.compile(
    rf"^\s*UPDATE\s+{_TABLE}\s+(?:USING\s+.*?\s+)?SET\s+(?P<set>.*?)\s+WHERE\s+(?P<where>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_DELETE = re.compile(
    rf"^\s*DELETE\s+.*?FROM\s+{_TABLE}\s+(?:USING\s+.*?\s+)?WHERE\s+(?P<where>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_TAIL = re.compile(r"\s+(?:IF\s+.*|USING\s+.*)$", re.IGNORECASE | re.DOTALL)
_CONDITION = re.compile(r"\sIF\s+(NOT\s+)?EXISTS\b|\sIF\s+\w+\s*(=|<|>|!=|IN)", re.IGNORECASE)
_WHOLE_ROW_DELETE = re.compile(r"^\s*DELETE\s+FROM\b", re.IGNORECASE)
_ARITHMETIC = re.compile(r"=\s*\"?\w+\"?\s*[-+]|[-+]\s*\"?\w+\"?\s*(,|WHERE)|\[\s*\?\s*\]\s*=", re.IGNORECASE)
_NAMED = re.compile(r"^%\((\w+)\)s$")
_EQUALS = re.compile(rf"^\s*(?P<column>{_NAME})\s*=\s*(?P<value>.+?)\s*$", re.DOTALL)


@dataclass(frozen=True)
class RowWrite:
    """One row a statement writes: where, what kind, and the values of the columns it names.

    `values` holds the Python values of the bound or literal columns; `reason` says why the
    row's key could not be read (the write is then unverifiable).
    """

    keyspace: str | None
    table: str | None
    kind: str  # insert | update | delete
    values: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None
    comparable: bool = True  # False: a collection append or counter: judged on presence only
    decoded: bool = False  # values decoded from bound bytes: already as the driver reads them
    conditional: bool = False  # IF [NOT] EXISTS / IF col = ...: applied or not is in the result

    @property
    def qualified(self) -> str:
        """`keyspace.table`, or what is known of it."""
        return f"{self.keyspace or '?'}.{self.table or '?'}"


def rows_written(statement: Any, parameters: Any, session: Any) -> list[RowWrite] | None:
    """The rows `statement` writes, or None when it writes nothing (a read, a schema change)."""
    from cassandra.query import BatchStatement, BoundStatement, PreparedStatement, SimpleStatement

    if isinstance(statement, PreparedStatement):
        statement = statement.bind(() if parameters is None else parameters)
    if isinstance(statement, BoundStatement):
        return _bound(statement.prepared_statement, statement.values, session)
    if isinstance(statement, BatchStatement):
        rows: list[RowWrite] = []
        for is_prepared, query, values in statement._statements_and_parameters:
            if is_prepared:
                prepared = _prepared_by_id(session, query)
                if prepared is None:
                    rows.append(RowWrite(None, None, "insert", reason="prepared statement unknown"))
                else:
                    rows.extend(_bound(prepared, values, session) or [])
            else:
                rows.extend(_simple(query, None, session) or [])
        return rows
    if isinstance(statement, SimpleStatement):
        return _simple(statement.query_string, parameters, session, statement.keyspace)
    if isinstance(statement, str):
        return _simple(statement, parameters, session)
    return None


def _prepared_by_id(session: Any, query_id: bytes) -> Any | None:
    known = getattr(session.cluster, "_prepared_statements", None) or {}
    return known.get(query_id)


@dataclass(frozen=True)
class _PreparedShape:
    """What a prepared statement writes, read once: kind, table, flags, written columns."""

    kind: str | None
    template: RowWrite | None  # None: no bind metadata, read from the CQL text each time
    columns: tuple[tuple[int, str, Any], ...]  # (bind index, column name, driver type)


_shapes: weakref.WeakKeyDictionary[Any, _PreparedShape] = weakref.WeakKeyDictionary()


def _shape(prepared: Any) -> _PreparedShape:
    try:
        return _shapes[prepared]
    except (KeyError, TypeError):
        pass
    cql = prepared.query_string
    kind = _kind(cql)
    metadata = prepared.column_metadata or []
    template: RowWrite | None = None
    if kind is not None and metadata:
        first = metadata[0]
        if kind == "delete" and not _WHOLE_ROW_DELETE.match(cql):
            reason = "DELETE of some columns only"
            template = RowWrite(first.keyspace_name, first.table_name, kind, reason=reason)
        else:
            template = RowWrite(
                first.keyspace_name,
                first.table_name,
                kind,
                decoded=True,
                comparable=not (kind == "update" and _ARITHMETIC.search(cql)),
                conditional=bool(_CONDITION.search(cql)),
            )
    columns = tuple(
        (index, column.name, column.type)
        for index, column in enumerate(metadata)
        if not column.name.startswith("[")  # [timestamp], [ttl], [limit]: not a column
    )
    shape = _PreparedShape(kind, template, columns)
    with contextlib.suppress(TypeError):  # not weak-referenceable: read it again next time
        _shapes[prepared] = shape
    return shape


def _bound(prepared: Any, values: Sequence[Any], session: Any) -> list[RowWrite] | None:
    shape = _shape(prepared)
    if shape.kind is None:
        return None
    if shape.template is None:
        return [_from_cql(prepared.query_string, shape.kind, session, prepared.keyspace)]
    if shape.template.reason is not None:
        return [shape.template]
    row: dict[str, Any] = {}
    protocol = prepared.protocol_version
    for index, name, kind in shape.columns:
        if index >= len(values):
            break
        raw = values[index]
        if raw is None:
            row[name] = None
        elif isinstance(raw, (bytes, bytearray, memoryview)):
            row[name] = kind.from_binary(bytes(raw), protocol)
        # else the driver's UNSET_VALUE: the column is not written
    return [replace(shape.template, values=row)]


def _simple(
    cql: str, parameters: Any, session: Any, keyspace: str | None = None
) -> list[RowWrite] | None:
    if _BEGIN_BATCH.match(cql):
        return [RowWrite(None, None, "insert", reason="a BEGIN BATCH text statement is not read")]
    kind = _kind(cql)
    if kind is None:
        return None
    return [_from_cql(cql, kind, session, keyspace, parameters)]


def _kind(cql: str) -> str | None:
    match = _WRITE.match(cql)
    return None if match is None else match.group(1).lower()


def _from_cql(
    cql: str, kind: str, session: Any, keyspace: str | None, parameters: Any = None
) -> RowWrite:
    """One row from CQL text: values are `%s` / `%(name)s` parameters or literals."""
    pattern = {"insert": _INSERT, "update": _UPDATE, "delete": _DELETE}[kind]
    match = pattern.match(cql)
    conditional = bool(_CONDITION.search(cql))
    if match is None:
        return RowWrite(None, None, kind, reason=f"{kind} not understood: {cql[:120]!r}")
    if kind == "delete" and not _WHOLE_ROW_DELETE.match(cql):
        return RowWrite(None, None, kind, reason="DELETE of some columns only")
    ks, table = _split_table(match.group("table"), keyspace or getattr(session, "keyspace", None))
    values_of = _Parameters(parameters, cql[: match.start("values" if kind == "insert" else "where")])
    try:
        if kind == "insert":
            names = [_unquote(c.strip()) for c in match.group("columns").split(",")]
            texts = _split_top_level(_TAIL.sub("", match.group("values")))
            if len(names) != len(texts):
                raise LiteralError("column and value counts differ")
            values = {n: values_of.value(t) for n, t in zip(names, texts, strict=True)}
            comparable = True
        else:
            values, comparable = {}, True
            if kind == "update":
                before_set = _Parameters(parameters, cql[: match.start("set")])
                values, comparable = _assignments(match.group("set"), before_set)
            values.update(_where_equalities(_TAIL.sub("", match.group("where")), values_of))
    except LiteralError as error:
        return RowWrite(ks, table, kind, reason=f"values not read ({error}): {cql[:120]!r}")
    return RowWrite(ks, table, kind, values, comparable=comparable, conditional=conditional)


class _Parameters:
    """Hands out a statement's parameters in order (`%s`) or by name (`%(name)s`)."""

    def __init__(self, parameters: Any, text_before: str) -> None:
        self._params = parameters
        self._next = text_before.count("%s")  # markers before this part of the statement

    def value(self, text: str) -> Any:
        text = text.strip()
        if text == "%s":
            if not isinstance(self._params, Sequence) or self._next >= len(self._params):
                raise LiteralError("fewer parameters than %s markers")
            self._next += 1
            return self._params[self._next - 1]
        named = _NAMED.match(text)
        if named is not None:
            if not isinstance(self._params, Mapping) or named.group(1) not in self._params:
                raise LiteralError(f"no parameter {named.group(1)!r}")
            return self._params[named.group(1)]
        return parse_literal(text)

    def skip(self, text: str) -> None:
        """Pass over the markers of a part whose value is not read."""
        self._next += text.count("%s")


def _assignments(text: str, values_of: _Parameters) -> tuple[dict[str, Any], bool]:
    """SET a = v, b = w: the values set; False when one is not a plain value (c = c + [..])."""
    values: dict[str, Any] = {}
    comparable = True
    for clause in _split_top_level(text):
        match = _EQUALS.match(clause)
        try:
            if match is None:
                raise LiteralError(clause)
            values[_unquote(match.group("column"))] = values_of.value(match.group("value"))
        except LiteralError:
            comparable = False  # an increment, an append, an element update
            values_of.skip(clause)
    return values, comparable


def _where_equalities(where: str, values_of: _Parameters) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for clause in re.split(r"\s+AND\s+", where, flags=re.IGNORECASE):
        match = _EQUALS.match(clause)
        if match is None:
            raise LiteralError(f"not an equality: {clause.strip()!r}")
        values[_unquote(match.group("column"))] = values_of.value(match.group("value"))
    return values


def _split_table(name: str, default_keyspace: str | None) -> tuple[str | None, str]:
    parts = [_unquote(p.strip()) for p in name.split(".")]
    return (parts[0], parts[1]) if len(parts) == 2 else (default_keyspace, parts[0])


def _unquote(name: str) -> str:
    if name.startswith('"') and name.endswith('"'):
        return name[1:-1].replace('""', '"')
    return name.lower()


def _split_top_level(text: str) -> list[str]:
    """Split a VALUES list on commas outside quotes and brackets."""
    parts: list[str] = []
    depth, start, quoted, i = 0, 0, False, 0
    while i < len(text):
        char = text[i]
        if quoted:
            if char == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    i += 1
                else:
                    quoted = False
        elif char == "'":
            quoted = True
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts]
