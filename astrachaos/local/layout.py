"""Where things live on disk: the shared jar cache and each cluster's and node's directories."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _root(env_var: str, xdg_var: str, fallback: str) -> Path:
    explicit = os.environ.get(env_var)
    if explicit:
        return Path(explicit).expanduser().absolute()
    xdg = os.environ.get(xdg_var)
    base = Path(xdg).expanduser() if xdg else Path.home() / fallback
    return (base / "astrachaos").absolute()


def cache_root() -> Path:
    """Per-user cache shared by every project: $ASTRACHAOS_CACHE or ~/.cache/astrachaos."""
    return _root("ASTRACHAOS_CACHE", "XDG_CACHE_HOME", ".cache")


def jar_dir(version: str) -> Path:
    """The classpath directory of one Cassandra version."""
    return cache_root() / "cassandra" / version / "lib"


def state_root() -> Path:
    """Where clusters keep config, data and logs: $ASTRACHAOS_HOME or ~/.local/share/astrachaos."""
    return _root("ASTRACHAOS_HOME", "XDG_DATA_HOME", ".local/share")


def clusters_root() -> Path:
    """The directory holding one sub-directory per cluster."""
    return state_root() / "clusters"


def cluster_dir(name: str) -> Path:
    """The directory of one cluster."""
    return clusters_root() / name


@dataclass(frozen=True)
class NodeLayout:
    """The directories and files of one node, all absolute."""

    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "conf"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def commitlog(self) -> Path:
        return self.root / "commitlog"

    @property
    def hints(self) -> Path:
        return self.root / "hints"

    @property
    def saved_caches(self) -> Path:
        return self.root / "saved_caches"

    @property
    def cdc_raw(self) -> Path:
        return self.root / "cdc_raw"

    @property
    def triggers(self) -> Path:
        return self.conf / "triggers"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def cassandra_yaml(self) -> Path:
        return self.conf / "cassandra.yaml"

    @property
    def logback_xml(self) -> Path:
        return self.conf / "logback.xml"

    @property
    def tools_logback_xml(self) -> Path:
        return self.conf / "logback-tools.xml"

    @property
    def system_log(self) -> Path:
        return self.logs / "system.log"

    @property
    def stdout_log(self) -> Path:
        return self.logs / "stdout.log"

    @property
    def pid_file(self) -> Path:
        return self.root / "node.pid"

    @property
    def ready_file(self) -> Path:
        return self.root / "node.ready"

    @property
    def config_uri(self) -> str:
        """The cassandra.yaml location as the file:/// URI Cassandra requires."""
        return self.cassandra_yaml.as_uri()

    def create(self) -> None:
        """Create every directory of the node."""
        for directory in (
            self.conf,
            self.triggers,
            self.data,
            self.commitlog,
            self.hints,
            self.saved_caches,
            self.cdc_raw,
            self.logs,
        ):
            directory.mkdir(parents=True, exist_ok=True)
