"""The verdict on a wrapped session's writes: counts per class, the writes not ok, an exit code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astrachaos.capture.verify import CaptureRecord, CaptureResult

DEFAULT_SHOWN = 20


@dataclass(frozen=True)
class Verdict:
    """What `Chaos.verify()` found: the same classes and `result.json` as `verify --capture`.

    `counts` maps each class (ok, lost, recovered, failed, indeterminate, overwritten, deleted,
    unverifiable, and with an app log silent and never_sent) to a number; `records` lists every
    write (or claimed key) that is not ok; `exit_code` is the CLI's for the same capture.
    """

    result: CaptureResult
    out: Path
    seed: int | None = None  # the faults' seed: chaos(..., seed=N) repeats them

    @property
    def counts(self) -> dict[str, int]:
        """Writes per class, plus captured, told_success, present and silent."""
        return self.result.counts

    @property
    def records(self) -> tuple[CaptureRecord, ...]:
        """Every write (or claimed key) that is not ok, with its key, class, answer and fault."""
        return self.result.records

    @property
    def exit_code(self) -> int:
        """0 nothing lost or silent, 1 lost or silent, 5 something could not be read."""
        return int(self.result.exit_code)

    @property
    def lost(self) -> tuple[CaptureRecord, ...]:
        """Acknowledged writes that are not in the table, and claimed keys that are silent."""
        return tuple(r for r in self.records if r.write_class.value == "lost" or r.silent)

    @property
    def result_path(self) -> Path:
        """Where result.json is."""
        return self.out / "result.json"

    def summary(self) -> str:
        """One line: captured, told success, present, lost, silent and the classes seen."""
        counts = self.counts
        shown = [
            f"{name} {counts[name]}"
            for name in ("recovered", "failed", "indeterminate", "overwritten", "deleted", "unverifiable")
            if counts.get(name)
        ]
        head = (
            f"captured {counts.get('captured', 0)}, told success {counts.get('told_success', 0)}, "
            f"ok {counts.get('ok', 0)}, lost {counts.get('lost', 0)}, silent {counts.get('silent', 0)}"
        )
        tail = [] if self.seed is None else [f"seed {self.seed}"]
        return ", ".join([head, *shown, *tail])

    def assert_no_loss(self, limit: int = DEFAULT_SHOWN) -> None:
        """Raise AssertionError listing lost and silent keys (at most `limit`, the rest counted).

        Also raises when verification could not read everything: no loss cannot be shown then.
        """
        bad = self.lost
        if not bad and not self.result.unread:
            return
        lines = [f"astrachaos: {self.result.verdict} ({self.summary()}); details in {self.result_path}"]
        lines.extend(_line(record) for record in bad[:limit])
        if len(bad) > limit:
            lines.append(f"  ... and {len(bad) - limit} more")
        if self.result.unread:
            lines.append(f"  not read: {', '.join(self.result.unread[:limit])}")
        raise AssertionError("\n".join(lines))


def _line(record: CaptureRecord) -> str:
    parts: list[Any] = [
        f"  {record.write_class.value}{' silent' if record.silent else ''}",
        f"{record.keyspace}.{record.table}",
        record.key,
    ]
    if record.told:
        parts.append(f"told {record.told}")
    if record.error:
        parts.append(f"error {record.error}")
    if record.fault:
        parts.append(f"fault {record.fault}")
    return " ".join(str(p) for p in parts)
