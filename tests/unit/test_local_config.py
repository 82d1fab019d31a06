"""The local cluster's configuration: tokens, addresses, ports, paths, and Java discovery."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from astrachaos.errors import EnvironmentProblem, ExitCode, UsageProblem
from astrachaos.local.config import cassandra_yaml, logback_xml, write_node_config
from astrachaos.local.java import find_java_home, module_flags
from astrachaos.local.launch import daemon_command
from astrachaos.local.layout import NodeLayout, cluster_dir, jar_dir
from astrachaos.local.provision import Runtime, maven_command, pom_text
from astrachaos.local.spec import ClusterSpec, balanced_tokens, jmx_port

TRIO = ClusterSpec(name="trio", nodes=3, first_address="127.0.0.11")


def _node_yaml(spec: ClusterSpec, index: int, root: Path) -> dict[str, object]:
    layout = NodeLayout(root / f"node{index + 1}")
    loaded = yaml.safe_load(cassandra_yaml(spec, index, layout))
    assert isinstance(loaded, dict)
    return loaded


def test_three_tokens_are_the_balanced_murmur3_tokens() -> None:
    assert balanced_tokens(3) == [
        -9223372036854775808,
        -3074457345618258603,
        3074457345618258602,
    ]


@pytest.mark.parametrize("nodes", [1, 2, 3])
def test_tokens_are_evenly_spaced_over_the_ring(nodes: int) -> None:
    tokens = balanced_tokens(nodes)
    gaps = {b - a for a, b in zip(tokens, [*tokens[1:], tokens[0] + 2**64], strict=True)}
    assert max(gaps) - min(gaps) <= nodes
    assert all(-(2**63) <= t < 2**63 for t in tokens)


def test_addresses_follow_the_first_address() -> None:
    assert TRIO.addresses == ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
    assert ClusterSpec().addresses == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("address", "port"), [("127.0.0.1", 7100), ("127.0.0.2", 7200), ("127.0.0.11", 8100)]
)
def test_jmx_port_is_7000_plus_100_times_the_last_octet(address: str, port: int) -> None:
    assert jmx_port(address) == port


def test_heap_is_1g_for_one_node_and_512m_each_for_three() -> None:
    assert ClusterSpec().heap == 1024
    assert TRIO.heap == 512
    assert ClusterSpec(heap_mb=768).heap == 768


def test_each_node_has_its_own_address_token_and_every_node_as_seed(tmp_path: Path) -> None:
    for index, address in enumerate(TRIO.addresses):
        node = _node_yaml(TRIO, index, tmp_path)
        assert node["listen_address"] == node["rpc_address"] == address
        assert node["initial_token"] == str(TRIO.tokens[index])
        assert node["num_tokens"] == 1
        assert node["storage_port"] == 7000
        assert node["native_transport_port"] == 9042
        assert node["auto_bootstrap"] is False
        assert node["endpoint_snitch"] == "SimpleSnitch"
        seeds = node["seed_provider"][0]["parameters"][0]["seeds"]  # type: ignore[index]
        assert seeds == "127.0.0.11,127.0.0.12,127.0.0.13"
        assert node["write_request_timeout"] == "2000ms"


def test_every_directory_in_the_yaml_is_absolute_and_inside_the_node(tmp_path: Path) -> None:
    node = _node_yaml(TRIO, 1, tmp_path)
    paths = [
        *node["data_file_directories"],  # type: ignore[misc]
        node["commitlog_directory"],
        node["hints_directory"],
        node["saved_caches_directory"],
        node["cdc_raw_directory"],
    ]
    for path in paths:
        assert Path(str(path)).is_absolute()
        assert Path(str(path)).parent == tmp_path / "node2"


def test_authenticator_is_allow_all_unless_auth_is_asked(tmp_path: Path) -> None:
    assert _node_yaml(ClusterSpec(), 0, tmp_path)["authenticator"] == "AllowAllAuthenticator"
    with_auth = ClusterSpec(auth=True)
    assert _node_yaml(with_auth, 0, tmp_path)["authenticator"] == "PasswordAuthenticator"


def test_logback_logs_info_to_the_node_system_log_and_nothing_to_the_console(
    tmp_path: Path,
) -> None:
    layout = NodeLayout(tmp_path / "node1")
    xml = logback_xml(layout)
    assert f"<file>{tmp_path / 'node1' / 'logs' / 'system.log'}</file>" in xml
    assert '<root level="INFO">' in xml
    assert "ConsoleAppender" not in xml


def test_write_node_config_creates_the_directories_and_files(tmp_path: Path) -> None:
    layout = NodeLayout(tmp_path / "node1")
    write_node_config(ClusterSpec(), 0, layout)
    for directory in ("conf", "data", "commitlog", "hints", "saved_caches", "cdc_raw", "logs"):
        assert (tmp_path / "node1" / directory).is_dir()
    assert layout.cassandra_yaml.is_file() and layout.logback_xml.is_file()


def test_config_uri_is_a_file_uri(tmp_path: Path) -> None:
    layout = NodeLayout(tmp_path / "node1")
    assert layout.config_uri == f"file://{tmp_path}/node1/conf/cassandra.yaml"
    assert layout.config_uri.startswith("file:///")


def test_daemon_command_pins_config_jmx_heap_and_module_flags(tmp_path: Path) -> None:
    from astrachaos.local.java import JavaHome

    runtime = Runtime(JavaHome(Path("/jdk17"), 17), tmp_path / "lib", "5.0.9")
    layout = NodeLayout(tmp_path / "trio" / "node2")
    command = daemon_command(runtime, "127.0.0.12", 512, layout)
    assert command[0] == "/jdk17/bin/java"
    assert command[-1] == "org.apache.cassandra.service.CassandraDaemon"
    assert f"-Dcassandra.config={layout.config_uri}" in command
    assert "-Dcassandra.jmx.local.port=8200" in command
    assert "-Djava.rmi.server.hostname=127.0.0.1" in command
    assert "-Xmx512m" in command and "-Xms512m" in command
    assert "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED" in command
    assert command[command.index("-cp") + 1] == f"{tmp_path / 'lib'}/*"


def test_java_11_needs_no_module_flags() -> None:
    assert module_flags(11) == []
    assert "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED" in module_flags(17)


def test_cache_and_state_directories_follow_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASTRACHAOS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ASTRACHAOS_HOME", str(tmp_path / "home"))
    assert jar_dir("5.0.9") == tmp_path / "cache" / "cassandra" / "5.0.9" / "lib"
    assert cluster_dir("trio") == tmp_path / "home" / "clusters" / "trio"


def test_the_pom_has_one_cassandra_dependency_and_maven_repo_is_overridable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pom = pom_text("5.0.9")
    assert "<artifactId>cassandra-all</artifactId>" in pom
    assert "<version>5.0.9</version>" in pom and "<packaging>pom</packaging>" in pom
    monkeypatch.setenv("ASTRACHAOS_MAVEN_REPO", str(tmp_path / "m2"))
    command = maven_command("mvn", tmp_path / "pom.xml", tmp_path / "lib")
    assert "dependency:copy-dependencies" in command and "-DincludeScope=runtime" in command
    assert f"-Dmaven.repo.local={tmp_path / 'm2'}" in command


@pytest.mark.parametrize(
    "kwargs",
    [
        {"nodes": 4},
        {"nodes": 0},
        {"version": "4.1.5"},
        {"first_address": "10.0.0.1"},
        {"first_address": "127.0.0.254", "nodes": 3},
        {"name": "../escape"},
    ],
)
def test_impossible_specs_are_usage_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageProblem):
        ClusterSpec(**kwargs)  # type: ignore[arg-type]


def test_spec_survives_a_json_round_trip() -> None:
    spec = ClusterSpec(name="trio", nodes=3, first_address="127.0.0.11", heap_mb=600, auth=True)
    assert ClusterSpec.from_json(spec.to_json()) == spec


def _fake_jdk(root: Path, name: str, version: str) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("#!/bin/sh\n")
    (home / "release").write_text(f'IMPLEMENTOR="Test"\nJAVA_VERSION="{version}"\n')
    return home


def test_java_discovery_prefers_17_over_25_and_11(tmp_path: Path) -> None:
    _fake_jdk(tmp_path, "temurin-25-jdk-amd64", "25.0.3")
    _fake_jdk(tmp_path, "java-11-openjdk-amd64", "11.0.22")
    jdk17 = _fake_jdk(tmp_path, "java-17-openjdk-amd64", "17.0.15")
    found = find_java_home(env={}, roots=[tmp_path])
    assert (found.path, found.major) == (jdk17, 17)


def test_java_home_pointing_at_25_is_ignored(tmp_path: Path) -> None:
    jdk25 = _fake_jdk(tmp_path, "temurin-25-jdk-amd64", "25.0.3")
    jdk17 = _fake_jdk(tmp_path, "java-17-openjdk-amd64", "17.0.15")
    assert find_java_home(env={"JAVA_HOME": str(jdk25)}, roots=[tmp_path]).path == jdk17


def test_java_home_pointing_at_17_is_honoured(tmp_path: Path) -> None:
    _fake_jdk(tmp_path / "search", "java-17-openjdk-amd64", "17.0.15")
    mine = _fake_jdk(tmp_path / "mine", "jdk", "17.0.9")
    assert find_java_home(env={"JAVA_HOME": str(mine)}, roots=[tmp_path / "search"]).path == mine


def test_java_11_is_used_when_there_is_no_17(tmp_path: Path) -> None:
    _fake_jdk(tmp_path, "java-11-openjdk-amd64", "11.0.22")
    assert find_java_home(env={}, roots=[tmp_path]).major == 11


def test_no_java_17_is_an_environment_problem_with_a_hint(tmp_path: Path) -> None:
    jdk25 = _fake_jdk(tmp_path, "temurin-25-jdk-amd64", "25.0.3")
    with pytest.raises(EnvironmentProblem) as raised:
        find_java_home(env={"JAVA_HOME": str(jdk25)}, roots=[tmp_path])
    assert raised.value.exit_code == ExitCode.ENVIRONMENT
    assert "JDK 17" in raised.value.message and str(jdk25) in raised.value.message
    assert raised.value.hint and "openjdk-17" in raised.value.hint
