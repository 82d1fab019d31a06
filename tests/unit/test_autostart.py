"""Autostart picks the cluster that serves the profile, and never one that does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from astrachaos.config.settings import Profile, load_profile
from astrachaos.errors import EnvironmentProblem
from astrachaos.local.layout import cluster_dir
from astrachaos.local.spec import ClusterSpec
from astrachaos.run import autostart
from astrachaos.run.autostart import describe, ensure_local_for, spec_for_profile


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cluster state directory, and no profile overrides from the environment."""
    monkeypatch.setenv("ASTRACHAOS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ASTRACHAOS_CONTACT_POINTS", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def saved(spec: ClusterSpec) -> None:
    cluster_dir(spec.name).mkdir(parents=True)
    (cluster_dir(spec.name) / "cluster.json").write_text(spec.to_json())


def local(name: str, *points: str) -> Profile:
    return Profile(name=name, kind="local", contact_points=list(points))


def test_the_local_profile_is_served_by_the_default_one_node_cluster() -> None:
    spec = spec_for_profile(load_profile("local").profile)
    assert (spec.name, spec.nodes, spec.addresses) == ("default", 1, ["127.0.0.1"])


def test_the_local3_profile_is_served_by_three_nodes_from_127_0_0_11() -> None:
    spec = spec_for_profile(load_profile("local3").profile)
    assert (spec.name, spec.nodes) == ("local3", 3)
    assert spec.addresses == ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
    assert describe(spec) == "'local3' (3 nodes on 127.0.0.11-127.0.0.13)"


def test_an_existing_cluster_keeps_its_own_settings() -> None:
    saved(ClusterSpec(name="local3", nodes=3, first_address="127.0.0.11", heap_mb=768))
    assert spec_for_profile(load_profile("local3").profile).heap_mb == 768


def test_an_address_the_named_cluster_does_not_serve_is_refused_not_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    saved(ClusterSpec())  # the default cluster, on 127.0.0.1
    monkeypatch.setenv("ASTRACHAOS_CONTACT_POINTS", "127.0.0.9")
    said: list[str] = []
    with pytest.raises(EnvironmentProblem) as caught:
        ensure_local_for("local", said.append)
    assert caught.value.message == (
        "nothing answers on 127.0.0.9:9042 (profile 'local'); the local cluster 'default' "
        "serves 127.0.0.1, not these addresses"
    )
    assert "--first-address 127.0.0.9" in (caught.value.hint or "")
    assert said == []


def test_addresses_that_are_not_consecutive_cannot_be_a_local_cluster() -> None:
    with pytest.raises(EnvironmentProblem, match="consecutive"):
        spec_for_profile(local("lab", "127.0.0.21", "127.0.0.23"))


def test_a_profile_that_answers_starts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(autostart, "_answers", lambda host, port: True)
    said: list[str] = []
    ensure_local_for("local3", said.append)
    assert said == []


def test_a_cassandra_profile_is_never_started(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(autostart, "_answers", lambda host, port: False)
    said: list[str] = []
    ensure_local_for("cassandra", said.append)
    assert said == []
