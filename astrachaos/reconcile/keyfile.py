"""Expected keys from a file: CSV with a header, JSON lines (a field path), or any log (a regex).

JSON lines: `key_path` (dotted, e.g. `keys` or `payload.id`) selects a value per line:
an object → its fields named like the key columns; a list of lists/objects → one key per
element (a list maps positionally to the key columns); a list of scalars → one key per element
with one key column, else one key; a scalar → one key (one key column). Without `key_path` the
line itself is the object. `match` keeps only lines whose fields equal the given values (e.g.
`level=info`: the app's success lines). Regex: every match in every line, named groups = columns.
`fixed` supplies key columns that the file does not hold (e.g. `run_id=...`).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from astrachaos.errors import UsageProblem

RawKey = dict[str, Any]


class KeyFormat(StrEnum):
    """How a file of expected keys is read."""

    CSV = "csv"
    JSONL = "jsonl"
    REGEX = "regex"


@dataclass(frozen=True)
class KeySpec:
    """Where keys are in the file and which key columns they fill."""

    columns: tuple[str, ...]
    format: KeyFormat
    key_path: str | None = None
    regex: str | None = None
    match: Mapping[str, str] = field(default_factory=dict)
    fixed: Mapping[str, str] = field(default_factory=dict)


def guess_format(path: Path, regex: str | None) -> KeyFormat:
    """regex when a regex is given, csv for `.csv`, JSON lines otherwise."""
    if regex is not None:
        return KeyFormat.REGEX
    return KeyFormat.CSV if path.suffix.lower() == ".csv" else KeyFormat.JSONL


def read_keys(path: Path, spec: KeySpec) -> Iterator[RawKey]:
    """Every key occurrence in the file, as column → raw value (text or JSON scalar)."""
    if not path.is_file():
        raise UsageProblem(f"{path}: {'a directory, not a file' if path.is_dir() else 'no such file'}")
    from_file = tuple(c for c in spec.columns if c not in spec.fixed)
    for key in _raw(path, spec, from_file):
        yield {**key, **spec.fixed}


def _raw(path: Path, spec: KeySpec, columns: tuple[str, ...]) -> Iterator[RawKey]:
    match spec.format:
        case KeyFormat.CSV:
            yield from _csv(path, columns)
        case KeyFormat.JSONL:
            yield from _jsonl(path, columns, spec.key_path, spec.match)
        case KeyFormat.REGEX:
            assert spec.regex is not None
            yield from _regex(path, columns, spec.regex)


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 file; a byte that is not UTF-8 is named by file and line."""
    try:
        handle = path.open("rb")
    except OSError as error:
        raise UsageProblem(f"{path}: cannot read: {error.strerror}") from None
    with handle:
        for number, raw in enumerate(handle, 1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise UsageProblem(
                    f"{path}:{number}: not UTF-8 text (byte 0x{raw[error.start]:02x} at column "
                    f"{error.start + 1})",
                    hint="convert the file to UTF-8 (e.g. `iconv -f LATIN1 -t UTF-8`)",
                ) from None
            yield number, text


def _csv(path: Path, columns: tuple[str, ...]) -> Iterator[RawKey]:
    reader = csv.DictReader(text for _, text in _text_lines(path))
    absent = [c for c in columns if c not in (reader.fieldnames or ())]
    if absent:
        raise UsageProblem(f"{path}: the header has no column {', '.join(absent)} ({reader.fieldnames})")
    for row in reader:
        yield {c: row[c] for c in columns}


def _jsonl(
    path: Path, columns: tuple[str, ...], key_path: str | None, match: Mapping[str, str]
) -> Iterator[RawKey]:
    for number, line in _text_lines(path):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise UsageProblem(f"{path}:{number}: not JSON: {error}") from None
        if not isinstance(entry, dict) or not _matches(entry, match):
            continue
        value = _at(entry, key_path) if key_path else entry
        if value is _ABSENT:
            continue
        for key in _keys_of(value, columns):
            if any(c not in key for c in columns):
                raise UsageProblem(f"{path}:{number}: a key lacks {columns}: {key}")
            yield key


_ABSENT = object()


def _at(entry: Any, key_path: str) -> Any:
    for part in key_path.split("."):
        if not isinstance(entry, dict) or part not in entry:
            return _ABSENT
        entry = entry[part]
    return entry


def _matches(entry: Mapping[str, Any], match: Mapping[str, str]) -> bool:
    return all(str(_at(entry, name)) == wanted for name, wanted in match.items())


def _keys_of(value: Any, columns: tuple[str, ...]) -> Iterator[RawKey]:
    if isinstance(value, dict):
        yield {c: value[c] for c in columns if c in value}
    elif isinstance(value, list) and value and all(isinstance(v, (list, dict)) for v in value):
        for item in value:
            yield from _keys_of(item, columns)
    elif isinstance(value, list) and len(columns) == 1:
        for item in value:
            yield {columns[0]: item}
    elif isinstance(value, list):
        if len(value) != len(columns):
            raise UsageProblem(f"{value!r} has {len(value)} values for key columns {columns}")
        yield dict(zip(columns, value, strict=True))
    elif len(columns) == 1:
        yield {columns[0]: value}
    else:
        raise UsageProblem(f"{value!r} is one value for key columns {columns}")


def _regex(path: Path, columns: tuple[str, ...], pattern: str) -> Iterator[RawKey]:
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise UsageProblem(f"--key-regex: {error}") from None
    missing = [c for c in columns if c not in compiled.groupindex]
    if missing:
        raise UsageProblem(f"--key-regex has no named group for {', '.join(missing)}")
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            for found in compiled.finditer(line):
                yield {c: found.group(c) for c in columns}


def parse_assignments(items: Sequence[str], option: str) -> dict[str, str]:
    """`name=value` pairs from repeated options."""
    pairs = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise UsageProblem(f"{option} {item!r}: expected NAME=VALUE")
        pairs[name.strip()] = value
    return pairs
