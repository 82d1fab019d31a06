"""Where a scenario writes: each side's profile (with the scenario's driver options) and table."""

from __future__ import annotations

from typing import Any

from astrachaos.config.settings import Profile, load_profile
from astrachaos.driver.table import RunTable, run_table
from astrachaos.scenario import Scenario


def resolve_profile(scenario: Scenario) -> Profile:
    """The scenario's target profile with its driver-option overrides applied."""
    profile = load_profile(scenario.target.profile).profile
    if scenario.target.driver:
        profile = profile.with_driver_overrides(scenario.target.driver)
    return profile


def secondary_profile(scenario: Scenario) -> Profile | None:
    """The dual write's second profile with its driver-option overrides; None without one."""
    secondary = scenario.target.secondary
    if secondary is None:
        return None
    profile = load_profile(secondary.profile).profile
    if secondary.driver:
        profile = profile.with_driver_overrides(secondary.driver)
    return profile


def target_table(scenario: Scenario, profile: Profile) -> RunTable:
    """Where this scenario's records go on this profile."""
    keyspace = scenario.target.keyspace or profile.keyspace
    return run_table(keyspace, scenario.schema_.table, astra=profile.kind == "astra")


def local_cluster_for(profile: Profile) -> Any | None:
    """The local cluster astrachaos runs that serves this profile's first contact point."""
    if profile.kind != "local":
        return None
    from astrachaos.local.cluster import LocalCluster

    for name in LocalCluster.names():
        cluster = LocalCluster.load(name)
        if profile.contact_points[0] in cluster.contact_points:
            return cluster
    return None
