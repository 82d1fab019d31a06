"""The live view of a run: a Rich panel on a terminal, plain lines otherwise, nothing with --quiet."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.live import Live
from rich.text import Text

from astrachaos.run.progress import ProgressSnapshot, RunProgress


def _line(s: ProgressSnapshot) -> str:
    errors = ", ".join(f"{k} {v}" for k, v in s.by_error.items()) or "none"
    eta = f"{s.eta_s:.0f}s" if s.eta_s is not None else "-"
    faults = ", ".join(s.active_faults) or "none"
    return (
        f"{s.phase:<10} acked {s.acked}/{s.planned_total}  {s.rate_per_s:,.0f}/s  "
        f"dropped {s.dropped}  errors: {errors}  faults: {faults}  {s.elapsed_s:.0f}s  eta {eta}"
    )


@contextmanager
def live_progress(progress: RunProgress, console: Console, quiet: bool) -> Iterator[None]:
    """Show `progress` until the block ends: a live line on a TTY, a line every 5 s otherwise."""
    if quiet:
        yield
        return
    if console.is_terminal:
        live = Live(Text(_line(progress.snapshot())), console=console, refresh_per_second=4)
        with live, _every(0.25, lambda: live.update(Text(_line(progress.snapshot())))):
            yield
        return
    with _every(5.0, lambda: console.print(_line(progress.snapshot()), highlight=False)):
        yield


@contextmanager
def _every(period_s: float, tick: Callable[[], None]) -> Iterator[None]:
    """Call `tick` every `period_s` on a thread of its own while the block runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(period_s):
            tick()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
