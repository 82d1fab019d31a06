"""pytest plugin: the `astrachaos` fixture turns a test of a user's own driver code into a chaos test.

    def test_upload(astrachaos, my_session):
        session = astrachaos.wrap(my_session, faults=[client_fault("fail", probability=0.2)])
        Uploader(session, on_success=astrachaos.claim("shop.orders")).upload(orders)

When the test body ends, every write made through the wrapped session is read back and
classified; the test fails listing the keys lost (acknowledged, absent) or silent (logged as
stored by the app, not in the table). `@pytest.mark.chaos(faults=[...])` gives the faults instead;
`--astrachaos-out DIR` keeps each test's capture and result.json (one directory per xdist
worker); `--astrachaos-profile NAME` is the profile `astrachaos.session` connects with.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported when a test wraps a session: pytest start-up stays light
    from astrachaos.dropin.session import ChaosSession
    from astrachaos.wrap.applog import AppLog
    from astrachaos.wrap.chaos import Chaos
    from astrachaos.wrap.faults import FaultLike
    from astrachaos.wrap.verdict import Verdict

_PROPERTY = "astrachaos"
_connections: dict[str, Any] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    """--astrachaos-out and --astrachaos-profile."""
    group = parser.getgroup("astrachaos", "chaos tests of your own Cassandra driver code")
    group.addoption(
        "--astrachaos-out",
        metavar="DIR",
        default=None,
        help="keep each test's capture and result.json under DIR (default: pytest's tmp_path)",
    )
    group.addoption(
        "--astrachaos-profile",
        metavar="NAME",
        default="local",
        help="connection profile of `astrachaos.session` (configs/NAME.yaml; default local)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; pytest-xdist workers (spawned later) share this session's stamp."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        os.environ[_STAMP_VARIABLE] = _SESSION_STAMP
    config.addinivalue_line(
        "markers",
        "chaos(faults=None, seed=None, settle_s=1.0): faults for the astrachaos fixture's wrap()",
    )


class ChaosFixture:
    """What a test gets as `astrachaos`: wrap a session, claim keys, read the verdict."""

    def __init__(self, request: pytest.FixtureRequest, out: Path, profile: str) -> None:
        marker = request.node.get_closest_marker("chaos")
        self._marker: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
        self._out = out
        self._profile = profile
        self._chaos: list[Chaos] = []
        self.verdicts: list[Verdict] = []

    def wrap(
        self,
        session: Any = None,
        faults: list[FaultLike] | FaultLike | None = None,
        *,
        seed: int | None = None,
        settle_s: float | None = None,
    ) -> ChaosSession:
        """Your session under `faults` (default: the test's `chaos` marker); use it in your code.

        Without a session, the profile's (`--astrachaos-profile`) is wrapped.
        """
        from astrachaos.wrap.chaos import Chaos

        faults = self._marker.get("faults") if faults is None else faults
        seed = self._marker.get("seed") if seed is None else seed
        settle = float(self._marker.get("settle_s", 1.0) if settle_s is None else settle_s)
        out = self._out if not self._chaos else self._out / f"wrap-{len(self._chaos) + 1}"
        chaos = Chaos(self.session if session is None else session, faults, out, seed=seed, settle_s=settle)
        self._chaos.append(chaos)
        return chaos.session

    @property
    def chaos(self) -> Chaos:
        """The last `Chaos` made by `wrap` (its controls: set_level, set_mode, stats, ...)."""
        if not self._chaos:
            raise RuntimeError("call astrachaos.wrap(session) first")
        return self._chaos[-1]

    @property
    def app_log(self) -> AppLog:
        """Where the application logs the keys it believes stored (see `claim`)."""
        return self.chaos.app_log

    def claim(self, table: str) -> Callable[..., None]:
        """A callback `fn(**key)` for your code's 'stored' log: `claim("ks.t")(id=1)`."""
        log = self.app_log

        def stored(**key: Any) -> None:
            log.stored(table, **key)

        return stored

    @property
    def session(self) -> Any:
        """A plain driver session from the profile (one per worker process), for set-up and reads."""
        if self._profile not in _connections:
            from astrachaos.config.settings import load_profile
            from astrachaos.driver.session import connect

            _connections[self._profile] = connect(load_profile(self._profile).profile)
        return _connections[self._profile].session

    def verify(self) -> list[Verdict]:
        """Verify every wrapped session now (done for you when the test body ends)."""
        for chaos in self._chaos[len(self.verdicts) :]:
            self.verdicts.append(chaos.verify())
        return self.verdicts

    def close(self) -> None:
        """Roll faults back and close the captures."""
        for chaos in self._chaos:
            chaos.close()


@pytest.fixture
def astrachaos(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChaosFixture]:
    """Wrap your session with `astrachaos.wrap(session, faults=...)`; lost or silent keys fail the test."""
    base = request.config.getoption("--astrachaos-out")
    out = tmp_path / "astrachaos" if base is None else _test_dir(Path(base), request.node.nodeid)
    fixture = ChaosFixture(request, out, request.config.getoption("--astrachaos-profile"))
    try:
        yield fixture
    finally:
        fixture.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """When the test body ends, verify its captures; lost or silent keys fail the test."""
    try:
        result = yield
    except BaseException:
        _verify_quietly(item)
        raise
    fixture = getattr(item, "funcargs", {}).get("astrachaos")
    if isinstance(fixture, ChaosFixture):
        verdicts = fixture.verify()
        _remember(item, verdicts)
        for verdict in verdicts:
            verdict.assert_no_loss()
    return result


def _verify_quietly(item: pytest.Item) -> None:
    """The test failed on its own: still record what its captures hold, for the summary line."""
    fixture = getattr(item, "funcargs", {}).get("astrachaos")
    if isinstance(fixture, ChaosFixture):
        try:
            _remember(item, fixture.verify())
        except Exception as error:  # the test's own failure is the one to show
            item.user_properties.append((_PROPERTY, f"not verified: {error}"))


def _remember(item: pytest.Item, verdicts: list[Verdict]) -> None:
    for verdict in verdicts:
        item.user_properties.append((_PROPERTY, f"{verdict.summary()} -> {verdict.result_path}"))


_summaries: list[tuple[str, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect the summary lines (also those sent back by pytest-xdist workers)."""
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == _PROPERTY:
            _summaries.append((report.nodeid, str(value)))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per chaos test: what its writes became."""
    if not _summaries:
        return
    terminalreporter.section("astrachaos")
    for nodeid, line in _summaries:
        terminalreporter.write_line(f"{nodeid}: {line}")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close the profile sessions this process opened."""
    while _connections:
        _, connection = _connections.popitem()
        connection.close()
    _summaries.clear()


def _test_dir(base: Path, nodeid: str) -> Path:
    """OUT/<session start>/<xdist worker>/<test>: a capture of its own per test, run after run."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:150]
    return base / _SESSION_STAMP / worker / name


_STAMP_VARIABLE = "ASTRACHAOS_PYTEST_STAMP"
_SESSION_STAMP = (
    os.environ.get(_STAMP_VARIABLE, "") if "PYTEST_XDIST_WORKER" in os.environ else ""
) or time.strftime("%Y%m%dT%H%M%S", time.gmtime())
