"""The capture ledger's journal: rows made durable by one `write()` before SQLite holds them.

A producer that must not tell its client anything the capture could lose (the proxy's loop
holding a client's answers) appends the rows queued so far to the journal as one record; the
ledger's thread later inserts them into SQLite in large transactions, off the hot path, and
stores in the same transaction how far the journal is applied. A record survives a kill -9 of
the process once `write()` returned (the page cache holds it), which is the durability SQLite
gives a WAL commit at `synchronous=NORMAL`; neither survives the machine losing power.

Files, in the capture directory: `capture.journal.<generation>` (a new generation starts when
one grows past `ROTATE_BYTES`; a file is deleted once SQLite holds all of it) and
`capture.lock`, locked (flock) by the one producer writing the capture. A record: its payload's
length and CRC-32 (big-endian, 4 bytes each), then the payload, `marshal` of one list of rows
per ledger table. A record cut short or failing its CRC ends the journal (a write under way, or
a process killed inside `write()`: nothing it was told about was acknowledged).
"""

from __future__ import annotations

import contextlib
import fcntl
import marshal
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

PREFIX = "capture.journal."
LOCK_NAME = "capture.lock"
ROTATE_BYTES = 64 * 1024 * 1024
_HEADER = struct.Struct(">II")

Batches = tuple[list[tuple[Any, ...]], ...]  # one list of rows per ledger table


class JournalError(ValueError):
    """A journal record that passed its CRC but is not what the ledger writes."""


def journal_path(directory: Path, generation: int) -> Path:
    """The journal file of one generation."""
    return Path(directory) / f"{PREFIX}{generation}"


def generations(directory: Path) -> list[int]:
    """The generations whose journal files exist, oldest first."""
    found = []
    for path in Path(directory).glob(f"{PREFIX}*"):
        suffix = path.name[len(PREFIX) :]
        if suffix.isdigit():
            found.append(int(suffix))
    return sorted(found)


class JournalWriter:
    """Appends records to one generation's file (one caller at a time: the ledger's lock)."""

    def __init__(self, directory: Path, generation: int) -> None:
        self.generation = generation
        self.path = journal_path(directory, generation)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.size = os.fstat(self._fd).st_size

    def append(self, batches: Batches) -> None:
        """One record holding `batches`, written whole before this returns (OSError if not)."""
        self.size += write_all(self._fd, encode_record(batches))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def encode_record(batches: Batches) -> bytes:
    """One record's bytes: length, CRC-32, then `marshal` of `batches`."""
    try:
        payload = marshal.dumps(batches)
    except ValueError:  # a subclass of str or int (an enum member) in a row: as plain values
        plain = tuple([tuple(_plain(v) for v in row) for row in rows] for rows in batches)
        payload = marshal.dumps(plain)
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def write_all(fd: int, data: bytes) -> int:
    """Write all of `data` to `fd` (OSError if not); how many bytes that was."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)  # (not inside the slice: compiled, mypyc evaluated it twice)
        view = view[written:]
    return len(data)


def _plain(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise ValueError(f"cannot journal a {type(value).__name__}")


def read_records(data: bytes, start: int, widths: Sequence[int]) -> list[Batches]:
    """The whole records of a journal file's bytes from offset `start` (a cut or corrupt one ends it).

    `widths`: how many columns each table's rows have (JournalError for a record that disagrees).
    """
    return list(_records_in(data, start, widths))


def _records_in(data: bytes, start: int, widths: Sequence[int]) -> Iterator[Batches]:
    at = start
    while at + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, at)
        end = at + _HEADER.size + length
        if end > len(data):
            break
        payload = data[at + _HEADER.size : end]
        if zlib.crc32(payload) != crc:
            break
        yield _decode(payload, widths, at, "")
        at = end


def iter_records(path: Path, start: int, end: int, widths: Sequence[int]) -> Iterator[tuple[Batches, int]]:
    """The whole records of journal file `path` from offset `start` up to `end`, one at a time, each
    with the offset after it (read as they come: a long journal is never held in memory at once).
    A record cut short or failing its CRC ends them, as in `read_records`."""
    with open(path, "rb") as file:
        file.seek(start)
        at = start
        while at + _HEADER.size <= end:
            header = file.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return
            length, crc = _HEADER.unpack(header)
            if at + _HEADER.size + length > end:
                return
            payload = file.read(length)
            if len(payload) < length or zlib.crc32(payload) != crc:
                return
            batches = _decode(payload, widths, at, f" of {path}")
            at += _HEADER.size + length
            yield batches, at


def _decode(payload: bytes, widths: Sequence[int], at: int, where: str) -> Batches:
    """One record's rows (JournalError if they are not what the ledger writes)."""
    try:
        batches = marshal.loads(payload)
    except (EOFError, ValueError, TypeError) as error:
        raise JournalError(f"unreadable journal record at byte {at}{where}: {error}") from None
    _check(batches, widths, at)
    return batches  # type: ignore[no-any-return]


def _check(batches: Any, widths: Sequence[int], at: int) -> None:
    plain = (int, float, str, bytes, type(None))
    if not isinstance(batches, tuple) or len(batches) != len(widths):
        raise JournalError(f"journal record at byte {at} is not a capture ledger record")
    for rows, width in zip(batches, widths, strict=True):
        if not isinstance(rows, list) or not all(
            isinstance(row, tuple) and len(row) == width and all(isinstance(v, plain) for v in row)
            for row in rows
        ):
            raise JournalError(f"journal record at byte {at} holds rows of the wrong shape")


def read_files(directory: Path) -> dict[int, bytes]:
    """The bytes of each generation's journal file (one applied and deleted meanwhile is skipped:
    its producer still runs)."""
    files = {}
    for found in generations(directory):
        try:
            files[found] = journal_path(directory, found).read_bytes()
        except FileNotFoundError:
            continue
    return files


def unapplied(files: dict[int, bytes], applied: tuple[int, int], widths: Sequence[int]) -> Iterator[Batches]:
    """Every record of the journal `files` SQLite does not hold, one at a time: after offset
    `applied[1]` of generation `applied[0]`, and all of any later generation, oldest first."""
    generation, offset = applied
    for found, data in sorted(files.items()):
        if found >= generation:
            yield from _records_in(data, offset if found == generation else 0, widths)


class ProducerLock:
    """`capture.lock`, held by the one producer of a capture for as long as it writes."""

    def __init__(self, directory: Path) -> None:
        self._fd = os.open(Path(directory) / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)

    def take(self) -> bool:
        """Lock it if no other process holds it; whether it is now held."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
