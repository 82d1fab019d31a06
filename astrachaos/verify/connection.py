"""Verification's own connection: a fresh Cluster, not the write session the faults wore out.

The write session may have lost its host, orphaned its stream ids or been reset; verification
reads with a Cluster of its own, waits a bounded time for the database to answer, retries a
schema refresh or a prepare that timed out, and says plainly when it cannot read at all
(exit 5, inconclusive): the run directory stays as it is, to be verified later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from astrachaos.config.settings import Profile
from astrachaos.driver.session import Connection, connect
from astrachaos.driver.table import RunTable
from astrachaos.errors import EnvironmentProblem, Inconclusive
from astrachaos.ledger.writer import Ledger
from astrachaos.scenario import Scenario
from astrachaos.verify.partitions import Verification, verify
from astrachaos.verify.reads import PartitionReader
from astrachaos.workload.plan import DIGEST, digest_named

log = logging.getLogger(__name__)
WAIT_S = 60.0  # how long verification waits for the database before giving up (inconclusive)


@contextmanager
def verifier(
    profile: Profile,
    table: RunTable,
    run_id: str,
    page_size: int,
    wait_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    digest: str | None = DIGEST,
) -> Iterator[PartitionReader]:
    """A partition reader on a Cluster of its own, closed on exit; Inconclusive if unreachable.

    `digest`: the digest the ledger names in its meta (None: an older ledger's).
    """
    deadline = time.monotonic() + (WAIT_S if wait_s is None else wait_s)
    connection = _connect(profile, deadline, sleep)
    try:
        reader = _reader(connection, table, run_id, page_size, deadline, sleep)
        reader.digest = digest_named(digest)
        yield reader
    finally:
        connection.close()


def _connect(profile: Profile, deadline: float, sleep: Callable[[float], None]) -> Connection:
    pause = 0.5
    while True:
        try:
            return connect(profile)
        except EnvironmentProblem as problem:
            if time.monotonic() + pause > deadline:
                raise Inconclusive(
                    f"verification cannot reach the database: {problem.message}",
                    hint="nothing was classified; verify the run later with `astrachaos verify RUN_DIR`",
                ) from None
            log.warning("verification cannot connect yet (%s); retrying in %.1f s", problem.message, pause)
            sleep(pause)
            pause = min(pause * 2, 5.0)


def _reader(
    connection: Connection,
    table: RunTable,
    run_id: str,
    page_size: int,
    deadline: float,
    sleep: Callable[[float], None],
) -> PartitionReader:
    pause = 0.5
    while True:
        try:
            if table.keyspace not in connection.cluster.metadata.keyspaces:
                # The schema refresh at connect timed out (the driver only logs it): again.
                connection.cluster.refresh_schema_metadata(max_schema_agreement_wait=5)
            return PartitionReader(connection.session, table, run_id, page_size)
        except EnvironmentProblem:  # the table is gone: waiting will not bring it back
            connection.close()
            raise
        except Exception as error:  # NoHostAvailable, OperationTimedOut, DriverException
            if time.monotonic() + pause > deadline:
                connection.close()
                raise Inconclusive(
                    f"verification cannot read {table.qualified}: {type(error).__name__}: {error}"[:500],
                    hint="nothing was classified; verify the run later with `astrachaos verify RUN_DIR`",
                ) from None
            log.warning("verification cannot prepare its read yet (%s); retrying", error)
            sleep(pause)
            pause = min(pause * 2, 5.0)


def verify_run_table(
    profile: Profile, table: RunTable, run_id: str, ledger: Ledger, scenario: Scenario, run_started_ns: int
) -> Verification:
    """`verify` of one side of a run: every bucket the scenario writes, its recorded fault windows.

    Read with a Cluster of its own (`verify.connection`), not the write session faults wore out;
    rows are digested as the ledger's meta says its records were.
    """
    windows = ledger.fault_windows()
    buckets = range(scenario.schema_.buckets)
    digest = ledger.meta().get("digest")
    with verifier(profile, table, run_id, scenario.verify.page_size, digest=digest) as reader:
        return verify(reader, ledger, buckets, scenario.verify, run_started_ns, windows=windows)
