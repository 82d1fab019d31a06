"""The pure pieces of the Python front door: futures, fault specs, controls, verdicts, pattern registry."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import cassandra
import pytest

import astrachaos
from astrachaos.capture.model import WriteClass
from astrachaos.capture.verify import CaptureRecord, CaptureResult
from astrachaos.dropin.future import ChaosFuture
from astrachaos.dropin.session import label_of
from astrachaos.errors import ExitCode
from astrachaos.patterns.careful import Careful
from astrachaos.patterns.empty_retry import EmptyRetry
from astrachaos.patterns.fire_and_forget import FireAndForget
from astrachaos.patterns.registry import PatternNotFound, available, resolve
from astrachaos.patterns.uploader import Uploader
from astrachaos.plugins import registered
from astrachaos.wrap.faults import ManualControls, client_fault, fault_specs
from astrachaos.wrap.recorder import told_of
from astrachaos.wrap.verdict import Verdict


def test_a_future_calls_each_callback_once_also_when_added_late() -> None:
    future = ChaosFuture()
    seen: list[Any] = []
    future.add_callback(lambda rows, tag: seen.append((tag, rows)), "early")
    future.add_errback(lambda error: seen.append(("never", error)))
    future.complete(["row"], None)
    future.complete(None, RuntimeError("second answer"))  # the driver may answer twice: ignored
    future.add_callbacks(lambda rows: seen.append(("late", rows)), lambda e: seen.append(("no", e)))
    assert seen == [("early", ["row"]), ("late", ["row"])]
    assert list(future.result()) == ["row"]


def test_a_failed_future_raises_the_drivers_exception_and_calls_errbacks() -> None:
    future = ChaosFuture()
    error = cassandra.Unavailable("x")
    got = threading.Event()
    future.add_errback(lambda e: got.set() if e is error else None)
    future.add_callback(lambda rows: pytest.fail("callback on failure"))
    future.complete(None, error)
    assert got.is_set()
    with pytest.raises(cassandra.Unavailable):
        future.result()


def test_fault_dicts_are_validated_before_anything_opens() -> None:
    (spec,) = fault_specs({"name": "client", "params": {"action": "drop"}, "schedule": {"probability": 0.5}})
    assert spec.schedule.probability == 0.5
    with pytest.raises(ValueError, match="faults\\[0\\] is invalid"):
        fault_specs([{"name": "client", "params": {"action": "explode"}}])
    with pytest.raises(ValueError, match="astrachaos proxy"):
        fault_specs([{"name": "protocol"}])
    with pytest.raises(ValueError, match="invalid fault"):
        client_fault("fail", probability=2)
    assert client_fault("latency", latency_ms=50).params == {"action": "latency", "latency_ms": 50}


def test_the_seeds_controls_decide_with_the_level_and_mode() -> None:
    controls = ManualControls(seed=1)
    assert controls.decide(0, 1) is None  # off until a level or enable
    controls.set_level(1.0)
    action = controls.decide(0, 1)
    assert action is not None and isinstance(action.fail_with, cassandra.WriteTimeout)
    controls.set_failure(cassandra.Unavailable)
    action = controls.decide(0, 1)
    assert action is not None and isinstance(action.fail_with, cassandra.Unavailable)
    controls.set_mode("latency", latency_ms=250)
    assert label_of(controls.decide(0, 1)) == "latency"
    controls.set_level(0.0)
    assert all(controls.decide(0, 1) is None for _ in range(50))
    with pytest.raises(ValueError):
        controls.set_mode("explode")
    with pytest.raises(ValueError):
        controls.set_failure("NoSuchError")
    with pytest.raises(ValueError):
        controls.set_level(1.5)


def test_what_the_code_was_told() -> None:
    from cassandra.cluster import NoHostAvailable
    from cassandra.connection import ConnectionShutdown

    assert told_of(None).value == "result"
    assert told_of(cassandra.OperationTimedOut()).value == "no_answer"
    assert told_of(ConnectionShutdown("x")).value == "closed"
    assert told_of(NoHostAvailable("x", {"h": ConnectionShutdown("x")})).value == "closed"
    assert told_of(cassandra.Unavailable("x")).value == "error"


def _result(
    records: list[CaptureRecord], lost: int, silent: int, unread: tuple[str, ...] = ()
) -> CaptureResult:
    return CaptureResult("c", {"lost": lost, "silent": silent, "captured": 9}, tuple(records), [], {}, unread,
                         "ALL", 0.1, 0.2)  # fmt: skip


def _record(n: int, write_class: WriteClass, silent: bool = False) -> CaptureRecord:
    return CaptureRecord("ks", "t", {"id": n}, write_class, silent, "result", None, "drop", 1)


def test_assert_no_loss_lists_lost_and_silent_keys_capped() -> None:
    records = [_record(n, WriteClass.LOST) for n in range(5)] + [_record(9, WriteClass.FAILED, silent=True)]
    verdict = Verdict(_result(records, lost=5, silent=1), Path("out"))
    with pytest.raises(AssertionError) as failure:
        verdict.assert_no_loss(limit=2)
    text = str(failure.value)
    assert "5 acknowledged writes lost, 1 claimed writes silent" in text
    assert "lost ks.t {'id': 0} told result fault drop" in text and "{'id': 2}" not in text
    assert "... and 4 more" in text and str(Path("out") / "result.json") in text


def test_assert_no_loss_passes_when_nothing_is_lost_and_fails_when_unread() -> None:
    Verdict(_result([_record(1, WriteClass.FAILED)], lost=0, silent=0), Path("o")).assert_no_loss()
    with pytest.raises(AssertionError, match=r"not read: ks\.t"):
        Verdict(_result([], lost=0, silent=0, unread=("ks.t",)), Path("o")).assert_no_loss()


def test_the_built_in_patterns_are_registered_as_entry_points() -> None:
    assert {k: available()[k] for k in ("careful", "fire-and-forget", "uploader", "empty-retry")} == {
        "careful": Careful, "fire-and-forget": FireAndForget, "uploader": Uploader, "empty-retry": EmptyRetry,
    }  # fmt: skip


class _NotAPattern:
    def __init__(self, ctx: Any) -> None:
        pass


def _two_arguments(a: Any, b: Any) -> None:
    pass


def test_a_user_pattern_resolves_from_module_and_attribute_and_is_checked() -> None:
    assert resolve("astrachaos.patterns.careful:Careful") is Careful
    with pytest.raises(PatternNotFound, match="lacks write, shutdown"):
        resolve(f"{__name__}:_NotAPattern")
    with pytest.raises(PatternNotFound, match="one argument"):
        resolve(f"{__name__}:_two_arguments")
    with pytest.raises(PatternNotFound, match="did you mean 'uploader'"):
        resolve("uplaoder")


def test_import_astrachaos_loads_neither_the_driver_nor_the_api() -> None:
    import subprocess
    import sys

    code = "import sys, astrachaos; print('cassandra' in sys.modules, 'astrachaos.wrap.chaos' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
    assert astrachaos.chaos.__module__ == "astrachaos.wrap.chaos"


def test_a_third_party_pattern_registers_through_the_entry_point_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package's `astrachaos.patterns` entry point is found by name, like the built-ins."""
    import sys

    (tmp_path / "teamwriter.py").write_text(
        "class Writer:\n    def __init__(self, ctx): pass\n    def write(self, batch, n): pass\n"
        "    def shutdown(self): pass\n"
    )
    info = tmp_path / "teamwriter-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: teamwriter\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[astrachaos.patterns]\nteam-writer = teamwriter:Writer\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    registered.cache_clear()
    try:
        factory = resolve("team-writer")
        assert factory.__module__ == "teamwriter" and factory.__name__ == "Writer"
        from astrachaos.scenario import Pattern

        assert Pattern(name="team-writer").name == "team-writer"
    finally:
        registered.cache_clear()


def _recorder(tmp_path: Path) -> Any:
    from types import SimpleNamespace

    from astrachaos.capture.ledger import CaptureLedger
    from astrachaos.wrap.recorder import CaptureRecorder

    def column(name: str, cql_type: str) -> Any:
        return SimpleNamespace(name=name, cql_type=cql_type)

    at, key, note = column("at", "timestamp"), column("id", "int"), column("note", "text")
    columns = {"id": key, "at": at, "note": note}
    table = SimpleNamespace(partition_key=[key], clustering_key=[], columns=columns)
    metadata = SimpleNamespace(keyspaces={"ks": SimpleNamespace(tables={"t": table})})
    session = SimpleNamespace(cluster=SimpleNamespace(metadata=metadata))
    return CaptureRecorder(CaptureLedger(tmp_path), session)


def test_literal_values_the_driver_would_read_differently_are_judged_on_presence(tmp_path: Path) -> None:
    from astrachaos.dropin.statements import RowWrite

    recorder = _recorder(tmp_path)
    plain = recorder._keyed(RowWrite("ks", "t", "insert", {"id": 1, "note": "x"}))
    assert plain.key == {"id": 1} and plain.value_digest is not None
    as_text = recorder._keyed(RowWrite("ks", "t", "insert", {"id": 1, "at": "2024-01-01 00:00:00+0000"}))
    assert as_text.key == {"id": 1} and as_text.value_digest is None  # presence only
    bad_key = recorder._keyed(RowWrite("ks", "t", "insert", {"id": "one", "note": "x"}))
    assert isinstance(bad_key, str) and "key column id" in bad_key
    recorder._ledger.close()


def test_a_capture_the_proxy_relayed_unread_is_inconclusive_not_clean() -> None:
    def result(not_followed: dict[str, int]) -> CaptureResult:
        return CaptureResult("c", {"lost": 0, "silent": 0, "captured": 9}, (), [], {}, (), "ALL", 0.1, 0.2,
                             proxy={"not_followed": not_followed})  # fmt: skip

    nothing = {"connections": 0, "refused": 0, "frames": 0, "requests": 0}
    assert result(nothing).exit_code == ExitCode.OK
    assert result({**nothing, "refused": 2}).exit_code == ExitCode.OK  # refused at STARTUP: wrote nothing
    for stream in ("connections", "frames", "requests"):
        unread = result({**nothing, stream: 1})
        assert unread.exit_code == ExitCode.INCONCLUSIVE
        assert f"relayed 1 {stream} unread" in unread.verdict
