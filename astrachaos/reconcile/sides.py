"""Open the tables to reconcile: one connection per profile, shared by the tables on it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from astrachaos.errors import EnvironmentProblem
from astrachaos.reconcile.portable import PortableProfile
from astrachaos.reconcile.schema import parse_table, read_schema
from astrachaos.reconcile.tables import Side

_MURMUR3 = "org.apache.cassandra.dht.Murmur3Partitioner"


@contextmanager
def open_sides(specs: Sequence[str], default_profile: str) -> Iterator[list[Side]]:
    """A Side for each `[PROFILE:]KS.TABLE`; the connections close on exit."""
    from astrachaos.config.settings import load_profile
    from astrachaos.driver.session import connect

    parsed = [parse_table(spec, default_profile) for spec in specs]
    with ExitStack() as stack:
        sessions: dict[str, Any] = {}
        sides = []
        for profile_name, keyspace, table in parsed:
            if profile_name not in sessions:
                profile = load_profile(profile_name).profile
                connection = stack.enter_context(connect(profile))
                portable = PortableProfile.of(profile)
                sessions[profile_name] = (connection.session, portable, portable.secret_env(profile))
                _require_murmur3(connection.session, profile_name)
            session, portable, secrets = sessions[profile_name]
            schema = read_schema(session, keyspace, table)
            sides.append(Side(f"{profile_name}:{keyspace}.{table}", session, schema, portable, secrets))
        yield sides


def _require_murmur3(session: Any, profile: str) -> None:
    row = session.execute("SELECT partitioner FROM system.local").one()
    if row is not None and row.partitioner != _MURMUR3:
        raise EnvironmentProblem(
            f"profile {profile}: the cluster uses {row.partitioner}; token-range reconcile needs Murmur3"
        )
