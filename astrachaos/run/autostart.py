"""Start the local cluster that serves a `local` profile when a run needs it and nothing answers.

A `local` profile names its cluster: `local` is the one-node `default` cluster on 127.0.0.1, any
other profile (`local3`) the cluster of the same name, with one node per contact point on
consecutive addresses from the first. Autostart starts that cluster and nothing else: when no
cluster can serve the profile's addresses it says so instead of starting an unrelated one.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from astrachaos.config.settings import Profile, load_profile
from astrachaos.errors import EnvironmentProblem, UsageProblem
from astrachaos.local.spec import CQL_PORT, DEFAULT_CLUSTER, ClusterSpec

if TYPE_CHECKING:
    from astrachaos.scenario import Scenario

log = logging.getLogger(__name__)
DEFAULT_PROFILE = "local"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def cluster_name(profile_name: str) -> str:
    """The local cluster a `local` profile names: `local` → `default`, else the profile's name."""
    return DEFAULT_CLUSTER if profile_name == DEFAULT_PROFILE else profile_name


def spec_for_profile(profile: Profile) -> ClusterSpec:
    """The cluster that serves a `local` profile's contact points; EnvironmentProblem if none can."""
    from astrachaos.local.cluster import LocalCluster, requested_spec

    name = cluster_name(profile.name)
    points = list(profile.contact_points)
    if profile.port != CQL_PORT:
        raise EnvironmentProblem(
            f"profile {profile.name!r} uses port {profile.port}; local clusters serve {CQL_PORT}",
            hint="start that database yourself, or use the local cluster's port",
        )
    saved = LocalCluster.saved_spec(name)
    if saved is not None and saved.addresses != points:
        raise EnvironmentProblem(
            f"nothing answers on {', '.join(points)}:{profile.port} (profile {profile.name!r}); "
            f"the local cluster {name!r} serves {', '.join(saved.addresses)}, not these addresses",
            hint="point the profile (or ASTRACHAOS_CONTACT_POINTS) at that cluster, or start "
            "one for these addresses under another name: astrachaos local up --name NAME "
            f"--nodes {len(points)} --first-address {points[0]}",
        )
    try:
        spec = requested_spec(name, nodes=len(points), first_address=points[0])
    except UsageProblem as error:
        raise EnvironmentProblem(
            f"profile {profile.name!r}: no local cluster can serve {', '.join(points)}: "
            f"{error.message}",
            hint=error.hint,
        ) from None
    if spec.addresses != points:
        raise EnvironmentProblem(
            f"profile {profile.name!r}: a local cluster's nodes sit on consecutive addresses; "
            f"{', '.join(points)} are not",
            hint=f"list the nodes in order from the first, e.g. {', '.join(spec.addresses)}",
        )
    return spec


def describe(spec: ClusterSpec) -> str:
    """`local3 (3 nodes on 127.0.0.11-127.0.0.13)`."""
    where = spec.addresses[0] if spec.nodes == 1 else f"{spec.addresses[0]}-{spec.addresses[-1]}"
    return f"{spec.name!r} ({spec.nodes} node{'s' if spec.nodes > 1 else ''} on {where})"


def ensure_local_for(profile_name: str, say: Callable[[str], None]) -> None:
    """For a `local` profile whose contact points do not all answer, start the cluster serving it."""
    profile = load_profile(profile_name).profile
    if profile.kind != "local":
        return
    if all(_answers(point, profile.port) for point in profile.contact_points):
        _refuse_paused(profile)
        log.debug("profile %s: %s answer; no cluster to start", profile_name, profile.contact_points)
        return
    spec = spec_for_profile(profile)
    from astrachaos.local.cluster import LocalCluster, ProgressLines

    cluster = LocalCluster(spec)
    if cluster.is_up():  # a node slow to accept a connection (a busy machine): nothing to start
        log.debug("profile %s: cluster %s is up", profile_name, spec.name)
        return
    say(
        f"no Cassandra answers for profile {profile.name!r}: starting the local cluster "
        f"{describe(spec)} (astrachaos local up --name {spec.name})"
    )
    result = cluster.up(ProgressLines(say))
    started = ", ".join(result.started) or "no node (already up)"
    say(f"local cluster {describe(spec)} up in {result.elapsed_s:.0f} s (started {started})")


def profiles_of(scenarios: Iterable[Scenario]) -> list[str]:
    """Every profile the scenarios write to (a dual write's secondary too), once each, in order."""
    names: dict[str, None] = {}
    for scenario in scenarios:
        names[scenario.target.profile] = None
        if scenario.target.secondary is not None:
            names[scenario.target.secondary.profile] = None
    return list(names)


def _refuse_paused(profile: Profile) -> None:
    """A SIGSTOPped node still accepts TCP, then never answers: say so now, not after a timeout.

    It is not resumed here: another run may have paused it on purpose; `local up` resumes it.
    """
    from astrachaos.local.cluster import LocalCluster
    from astrachaos.local.node import NodeState

    for name in LocalCluster.names():
        cluster = LocalCluster.load(name)
        if profile.contact_points[0] not in cluster.contact_points:
            continue
        paused = [node.name for node in cluster.nodes if node.state() is NodeState.PAUSED]
        if paused:
            raise EnvironmentProblem(
                f"local cluster {name!r}: {', '.join(paused)} is paused (SIGSTOP), so nothing "
                "would answer; a run killed during a node-pause fault leaves it so",
                hint=f"`astrachaos local up --name {name}` resumes it",
            )
