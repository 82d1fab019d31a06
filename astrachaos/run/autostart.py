"""Start the local cluster when a run targets a `local` profile and nothing answers yet."""

from __future__ import annotations

import socket
from collections.abc import Callable

from astrachaos.config.settings import load_profile


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def ensure_local_for(profile_name: str, say: Callable[[str], None]) -> None:
    """For a `local` profile whose first contact point does not answer, run `local up` first."""
    profile = load_profile(profile_name).profile
    if profile.kind != "local" or _answers(profile.contact_points[0], profile.port):
        return
    from astrachaos.local.cluster import LocalCluster, UpProgress, requested_spec

    say("no Cassandra answers on the local profile: starting the local cluster (astrachaos local up)")

    def progress(step: UpProgress) -> None:
        say(f"local up: {step.message}")

    result = LocalCluster(requested_spec("default")).up(progress)
    say(f"local cluster up in {result.elapsed_s:.0f} s")
