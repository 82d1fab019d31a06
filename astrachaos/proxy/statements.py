"""Which column each bind marker of an INSERT, UPDATE or DELETE text writes, and what is literal.

Drivers send the text with `?` (or `:name`) markers; PREPARED metadata names the markers of a
prepared statement, but a QUERY with positional values carries only the text. This reads the
common shapes: `INSERT INTO t (cols) VALUES (...) [USING ...]`, `UPDATE t [USING ...] SET c = ?,
... WHERE k = ? AND ...`, `DELETE FROM t [USING TIMESTAMP ?] WHERE ...`. Anything else (IN
lists, collection element updates, arithmetic) yields None: the write is unverifiable.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

_TOKEN = re.compile(
    r"""\s*(?:(?P<string>'(?:[^']|'')*')|(?P<quoted>"(?:[^"]|"")*")|(?P<marker>\?|:\w+)
    |(?P<word>[A-Za-z_][\w]*)|(?P<number>-?[\d.][\w.+-]*)|(?P<punct>[(),=<>+\-\[\]{}.;*]))""",
    re.VERBOSE,
)


class Kind(StrEnum):
    """The statement kinds capture reads."""

    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"
    OTHER = "other"


@dataclass(frozen=True)
class Shape:
    """What the text says about its markers and literals."""

    kind: Kind
    markers: list[str] | None  # column per marker, "[timestamp]"/"[ttl]"; None: not understood
    literal: frozenset[str]  # columns given a literal value
    conditional: bool  # IF ... (LWT)
    arithmetic: bool  # c = c + ? (collections, counters): presence only
    column_delete: bool  # DELETE c FROM ...


def kind_of(text: str) -> Kind:
    """INSERT, UPDATE, DELETE or OTHER, from the first word."""
    first = text.lstrip().split(None, 1)[0].upper() if text.strip() else ""
    return {"INSERT": Kind.INSERT, "UPDATE": Kind.UPDATE, "DELETE": Kind.DELETE}.get(first, Kind.OTHER)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens = []
    at = 0
    while at < len(text):
        found = _TOKEN.match(text, at)
        if found is None or found.end() == at:
            if text[at:].strip() == "":
                break
            tokens.append(("punct", text[at]))
            at += 1
            continue
        kind = found.lastgroup or "punct"
        value = found.group(kind)
        if kind == "quoted":
            kind, value = "name", value[1:-1].replace('""', '"')
        elif kind == "word":
            kind, value = "word", value
        tokens.append((kind, value))
        at = found.end()
    return tokens


def _name(token: tuple[str, str]) -> str:
    return token[1] if token[0] == "name" else token[1].lower()


@functools.lru_cache(maxsize=4096)  # statement texts repeat: a shape is read once per text
def shape_of(text: str) -> Shape:
    """Read the statement text."""
    kind = kind_of(text)
    tokens = _tokens(text)
    upper = [t[1].upper() if t[0] == "word" else t[1] for t in tokens]
    conditional = "IF" in upper
    if kind is Kind.INSERT:
        markers, literal = _insert(tokens, upper)
        return Shape(kind, markers, literal, conditional, False, False)
    if kind in (Kind.UPDATE, Kind.DELETE):
        markers, literal, arithmetic = _assignments(tokens, upper)
        column_delete = kind is Kind.DELETE and upper[1:2] != ["FROM"]
        return Shape(kind, markers, literal, conditional, arithmetic, column_delete)
    return Shape(kind, None, frozenset(), conditional, False, False)


def _insert(tokens: list[tuple[str, str]], upper: list[str]) -> tuple[list[str] | None, frozenset[str]]:
    if "JSON" in upper[:6]:
        return None, frozenset()
    try:
        start = upper.index("(")
        end = upper.index(")", start)
        values_at = upper.index("VALUES", end)
    except ValueError:
        return None, frozenset()
    columns = [_name(t) for t in tokens[start + 1 : end] if t[1] != ","]
    items = _items(tokens, upper, values_at + 1)
    if items is None or len(items) != len(columns):
        return None, frozenset()
    markers: list[str] = []
    literal: set[str] = set()
    for column, item in zip(columns, items, strict=True):
        if len(item) == 1 and item[0][0] == "marker":
            markers.append(column)
        elif any(t[0] == "marker" for t in item):
            return None, frozenset()
        else:
            literal.add(column)
    rest_start = values_at + 1 + sum(len(i) for i in items) + len(items) + 1
    markers += _using(upper[rest_start:], tokens[rest_start:])
    return markers, frozenset(literal)


def _items(tokens: list[tuple[str, str]], upper: list[str], at: int) -> list[list[tuple[str, str]]] | None:
    if at >= len(upper) or upper[at] != "(":
        return None
    items: list[list[tuple[str, str]]] = [[]]
    depth = 0
    for token, text in zip(tokens[at + 1 :], upper[at + 1 :], strict=True):
        if text in ("(", "[", "{"):
            depth += 1
        elif text in (")", "]", "}"):
            if depth == 0:
                return items
            depth -= 1
        elif text == "," and depth == 0:
            items.append([])
            continue
        items[-1].append(token)
    return None


def _using(upper: list[str], tokens: list[tuple[str, str]]) -> list[str]:
    markers = []
    for index, token in enumerate(tokens):
        if token[0] == "marker":
            before = upper[index - 1] if index else ""
            markers.append(
                "[timestamp]" if before == "TIMESTAMP" else "[ttl]" if before == "TTL" else "[other]"
            )
    return markers


def _assignments(
    tokens: list[tuple[str, str]], upper: list[str]
) -> tuple[list[str] | None, frozenset[str], bool]:
    markers: list[str] = []
    literal: set[str] = set()
    arithmetic = False
    for index, token in enumerate(tokens):
        before = upper[index - 1] if index else ""
        if token[0] == "marker":
            if before == "TIMESTAMP":
                markers.append("[timestamp]")
            elif before == "TTL":
                markers.append("[ttl]")
            elif before == "=" and index >= 2 and tokens[index - 2][0] in ("word", "name"):
                markers.append(_name(tokens[index - 2]))
            elif before in ("+", "-") and index >= 4 and upper[index - 3] == "=":
                markers.append(_name(tokens[index - 4]))  # c = c + ?
                arithmetic = True
            else:
                return None, frozenset(), arithmetic
        elif token[0] in ("string", "number") and before == "=" and index >= 2:
            if tokens[index - 2][0] in ("word", "name"):
                literal.add(_name(tokens[index - 2]))
        elif token[1] in ("+", "-") and before not in ("=",) and index + 1 < len(tokens):
            arithmetic = arithmetic or upper[index - 2] == "="
    return markers, frozenset(literal), arithmetic
