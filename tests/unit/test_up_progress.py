"""`local up` shows how far it is in a log too: artifacts and bytes Maven fetched, phases, time."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from astrachaos.local import provision
from astrachaos.local.cluster import ProgressLines, UpProgress
from astrachaos.local.java import find_java_home
from astrachaos.local.provision import DownloadStatus, downloaded_bytes


@pytest.mark.parametrize(
    ("line", "size"),
    [
        ("Downloaded from central: https://repo.maven.apache.org/x/a.pom (3.9 kB at 12 kB/s)", 3900),
        ("[INFO] Downloaded from central: https://repo/x/b.jar (1.2 MB at 3.1 MB/s)", 1_200_000),
        ("Downloaded from central: https://repo/x/c.sha1 (40 B at 1 kB/s)", 40),
        ("Downloading from central: https://repo/x/d.jar", None),
        ("[INFO] BUILD SUCCESS", None),
    ],
)
def test_a_maven_downloaded_line_gives_the_artifact_size(line: str, size: int | None) -> None:
    assert downloaded_bytes(line) == size


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_new_phase_is_said_at_once_the_same_phase_every_five_seconds() -> None:
    clock, said = Clock(), []
    lines = ProgressLines(said.append, every_s=5.0, clock=clock)
    for t, message in [(0, "checking ports"), (0.1, "downloading: 0 artifacts, 0.0 MB"),
                       (2, "downloading: 10 artifacts, 1.0 MB"), (5.2, "downloading: 30 artifacts, 9.0 MB"),
                       (6, "starting node1 at 127.0.0.1"), (7, "waiting for CQL"), (9, "waiting for CQL"),
                       (12.5, "waiting for CQL")]:  # fmt: skip
        clock.now = t
        lines(UpProgress(message, 0, 1))
    assert said == [
        "local up: checking ports (0 s)",
        "local up: downloading: 0 artifacts, 0.0 MB (0 s)",
        "local up: downloading: 30 artifacts, 9.0 MB (5 s)",
        "local up: starting node1 at 127.0.0.1 (6 s)",
        "local up: waiting for CQL, 0/1 nodes ready (7 s)",
        "local up: waiting for CQL, 0/1 nodes ready (12 s)",
    ]


FAKE_MVN = """#!/bin/sh
# Stands in for Maven: logs two fetched artifacts, then writes the jar where it was asked to.
for arg in "$@"; do case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}";; esac; done
echo "[INFO] Downloading from central: https://repo/a.pom"
echo "[INFO] Downloaded from central: https://repo/a.pom (2.0 kB at 10 kB/s)"
echo "[INFO] Downloaded from central: https://repo/cassandra-all.jar (8.5 MB at 5 MB/s)"
mkdir -p "$out" && touch "$out/cassandra-all-5.0.1.jar"
"""


def test_the_first_download_reports_each_artifact_maven_fetches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mvn = tmp_path / "bin" / "mvn"
    mvn.parent.mkdir()
    mvn.write_text(FAKE_MVN)
    mvn.chmod(mvn.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{mvn.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ASTRACHAOS_CACHE", str(tmp_path / "cache"))
    seen: list[DownloadStatus] = []
    lib = provision.ensure_jars("5.0.1", find_java_home(), seen.append)
    assert (lib / "cassandra-all-5.0.1.jar").is_file()
    assert seen == [
        DownloadStatus("5.0.1", 0, 0),
        DownloadStatus("5.0.1", 1, 2000),
        DownloadStatus("5.0.1", 2, 8_502_000),
    ]
