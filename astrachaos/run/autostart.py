"""Start the local cluster when a run targets a `local` profile and nothing answers yet."""

from __future__ import annotations

import socket
from collections.abc import Callable

from astrachaos.config.settings import Profile, load_profile
from astrachaos.errors import EnvironmentProblem


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def ensure_local_for(profile_name: str, say: Callable[[str], None]) -> None:
    """For a `local` profile whose first contact point does not answer, run `local up` first."""
    profile = load_profile(profile_name).profile
    if profile.kind != "local":
        return
    if _answers(profile.contact_points[0], profile.port):
        _refuse_paused(profile)
        return
    from astrachaos.local.cluster import LocalCluster, UpProgress, requested_spec

    say("no Cassandra answers on the local profile: starting the local cluster (astrachaos local up)")

    def progress(step: UpProgress) -> None:
        say(f"local up: {step.message}")

    result = LocalCluster(requested_spec("default")).up(progress)
    say(f"local cluster up in {result.elapsed_s:.0f} s")


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
