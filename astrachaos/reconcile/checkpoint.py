"""`checkpoint.jsonl`: one line per completed token range, so an interrupted comparison resumes."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from astrachaos.errors import UsageProblem
from astrachaos.reconcile.schema import JsonValue
from astrachaos.reconcile.tokens import TokenRange

CHECKPOINT_FILE = "checkpoint.jsonl"


class Checkpoint:
    """Appends a header (what is compared) and one line per completed range; fsync per line."""

    def __init__(self, path: Path, header: Mapping[str, JsonValue], resume: bool) -> None:
        self.path = path
        self.completed: dict[TokenRange, dict[str, Any]] = {}
        self._lock = threading.Lock()
        if resume and path.is_file():
            cut_short = self._load(dict(header))
            self._file = path.open("a", encoding="utf-8")
            if cut_short:  # the last line ends mid-way: the next starts on its own
                self._file.write("\n")
        else:
            self._file = path.open("w", encoding="utf-8")
            self._append({"kind": "header", **header})

    def _load(self, header: dict[str, JsonValue]) -> bool:
        """Read the completed ranges; whether the file's last line was cut short."""
        text = self.path.read_text(encoding="utf-8")
        lines = text.splitlines()
        if not lines:
            return False
        found = json.loads(lines[0])
        found.pop("kind", None)
        if found != json.loads(json.dumps(header)):
            raise UsageProblem(
                f"{self.path} was written for another comparison ({found}); cannot --resume it",
                hint="use another --out directory, or drop --resume to start over",
            )
        for entry in _ranges(lines):
            start, end = entry["range"]
            self.completed[TokenRange(start, end)] = entry
        return not text.endswith("\n")

    def record(self, token_range: TokenRange, findings: Mapping[str, Any]) -> None:
        """Durably mark `token_range` as done, with everything found in it."""
        self._append({"kind": "range", "range": token_range.to_json(), **findings})

    def _append(self, entry: Mapping[str, Any]) -> None:
        text = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self._file.write(text)
            self._file.flush()
            os.fsync(self._file.fileno())

    def ranges_in_file(self) -> int:
        """How many completed ranges the file holds now (read back: what a resume will find)."""
        return sum(1 for _ in _ranges(self.path.read_text(encoding="utf-8").splitlines()))

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._file.close()


def _ranges(lines: list[str]) -> Iterator[dict[str, Any]]:
    """The range entries of a checkpoint's lines (after the header); a line cut short by a crash is
    skipped (that range runs again)."""
    for line in lines[1:]:
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            continue
