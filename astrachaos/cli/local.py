"""`astrachaos local`: run a real Apache Cassandra cluster on this machine."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from astrachaos.cli.console import stderr, stdout

if TYPE_CHECKING:
    from astrachaos.local.cluster import (
        DownResult,
        LocalCluster,
        NodeStatus,
        UpProgress,
        UpResult,
    )

app = typer.Typer(
    no_args_is_help=True,
    help="Run a real Apache Cassandra 5.0 cluster on 127.0.0.N (jars from Maven Central).",
)

NameOption = Annotated[str, typer.Option("--name", help="Cluster name.")]
NodeArgument = Annotated[str, typer.Argument(help="Node: node1, 1 or its address.")]


@app.command()
def up(
    nodes: Annotated[
        int | None, typer.Option(min=1, max=3, help="Number of nodes (default 1).")
    ] = None,
    cassandra_version: Annotated[
        str | None, typer.Option(help="Apache Cassandra 5.0.x version (default 5.0.9).")
    ] = None,
    name: NameOption = "default",
    first_address: Annotated[
        str | None, typer.Option(help="Address of node1; the others follow (default 127.0.0.1).")
    ] = None,
    heap: Annotated[
        int | None, typer.Option(help="Heap per node in MB (default 1024, or 512 with 2+ nodes).")
    ] = None,
    auth: Annotated[
        bool | None,
        typer.Option("--auth/--no-auth", help="PasswordAuthenticator (cassandra/cassandra)."),
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds to wait for the nodes.")] = None,
) -> None:
    """Start a local cluster (downloading Cassandra's jars on first use); no-op if it is up."""
    from astrachaos.local.cluster import LocalCluster, requested_spec

    spec = requested_spec(
        name,
        nodes=nodes,
        first_address=first_address,
        version=cassandra_version,
        heap_mb=heap,
        auth=auth,
    )
    cluster = LocalCluster(spec)
    with _progress() as show:
        result = cluster.up(progress=show, timeout_s=timeout)
    _render_up(cluster, result)


@app.command()
def down(
    name: NameOption = "default",
    wipe: Annotated[
        bool, typer.Option(help="Also delete the cluster's data, config and logs.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds before SIGTERM becomes SIGKILL.")] = 60.0,
) -> None:
    """Stop the nodes astrachaos started for a cluster (and optionally wipe it)."""
    from astrachaos.local.cluster import LocalCluster

    _render_down(LocalCluster.load(name).down(wipe=wipe, timeout_s=timeout))


@app.command()
def status(
    name: Annotated[
        str | None, typer.Option("--name", help="Only this cluster (default: every cluster).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON on stdout instead of a table.")
    ] = False,
) -> None:
    """Show every node of the local clusters: pid, state, version, data size."""
    from astrachaos.local.cluster import LocalCluster

    names = [name] if name else LocalCluster.names()
    if as_json:
        from dataclasses import asdict

        from astrachaos.cli.console import print_json

        statuses = [row for each in names for row in LocalCluster.load(each).status()]
        print_json([asdict(row) | {"state": row.state.value} for row in statuses])
        return
    if not names:
        stdout.print("No local cluster yet. Start one with `astrachaos local up`.")
        return
    rows = [row for each in names for row in LocalCluster.load(each).status()]
    stdout.print(_status_table(rows))


@app.command()
def logs(
    node: NodeArgument,
    name: NameOption = "default",
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines to show first.")] = 50,
) -> None:
    """Print a node's system.log (the last lines, then new ones with -f)."""
    from astrachaos.local.cluster import LocalCluster
    from astrachaos.local.readiness import log_tail

    path = LocalCluster.load(name).node(node).layout.system_log
    for line in log_tail(path, lines):
        stdout.out(line, highlight=False)
    if follow:
        _follow(path)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def nodetool(
    node: NodeArgument,
    args: Annotated[
        list[str] | None, typer.Argument(help="nodetool arguments, e.g. status.")
    ] = None,
    name: NameOption = "default",
) -> None:
    """Run nodetool against a node (e.g. `astrachaos local nodetool node1 status`)."""
    from astrachaos.local.cluster import LocalCluster

    result = LocalCluster.load(name).node(node).nodetool(args or ["status"])
    stdout.out(result.stdout.rstrip("\n"), highlight=False)


def _follow(path: Path) -> None:
    with open(path, errors="replace") as log:
        log.seek(0, 2)
        while True:
            line = log.readline()
            if line:
                stdout.out(line.rstrip("\n"), highlight=False)
            else:
                time.sleep(0.5)


@contextmanager
def _progress() -> Iterator[Callable[[UpProgress], None]]:
    """A Rich progress display on stderr, fed by the library's plain callback; lines in a log."""
    if not stderr.is_terminal:
        from astrachaos.local.cluster import ProgressLines

        yield ProgressLines(lambda line: stderr.print(line, soft_wrap=True))
        return
    display = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("nodes ready"),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    )
    task = display.add_task("starting", total=None)

    def show(step: UpProgress) -> None:
        display.update(task, description=step.message, completed=step.ready, total=step.total)

    with display:
        yield show


def _render_up(cluster: LocalCluster, result: UpResult) -> None:
    spec = result.spec
    where = ", ".join(spec.addresses)
    for repair in result.repaired:
        stdout.print(f"[yellow]{escape(repair)}[/]", soft_wrap=True)
    if result.already_up and result.repaired:
        stdout.print(f"Cluster [bold]{spec.name}[/] serves CQL again ({where}).")
        return
    if result.already_up:
        stdout.print(f"Cluster [bold]{spec.name}[/] is already up ({where}); nothing to do.")
        return
    stdout.print(
        f"Cluster [bold]{spec.name}[/] is up: Apache Cassandra {result.release_version}, "
        f"{spec.nodes} node(s) at {where}, CQL port {cluster.port} "
        f"(started {', '.join(result.started)} in {result.elapsed_s:.0f} s).",
        soft_wrap=True,
    )
    for node in cluster.nodes:
        stdout.print(f"  {node.name}  {node.address}  JMX 127.0.0.1:{node.jmx_port}")
        stdout.print(f"    data  {node.layout.data}", soft_wrap=True)
        stdout.print(f"    logs  {node.layout.logs}", soft_wrap=True)
    stdout.print(f"Stop it with `astrachaos local down --name {spec.name}`.", soft_wrap=True)


def _render_down(result: DownResult) -> None:
    stopped = ", ".join(result.stopped) or "none"
    message = f"Cluster [bold]{result.name}[/]: stopped {stopped}"
    if result.killed:
        message += f"; killed after the timeout: {', '.join(result.killed)}"
    if result.wiped:
        message += f"; wiped {result.directory}"
    stdout.print(message + ".", soft_wrap=True)


def _status_table(rows: list[NodeStatus]) -> Table:
    colours = {
        "up": "green",
        "starting": "yellow",
        "paused": "magenta",
        "cql off": "magenta",
        "down": "red",
    }
    table = Table(title="Local clusters", caption="load = size of the node's data directory")
    for column in ("cluster", "node", "address", "pid", "state", "version", "load", "JMX"):
        table.add_column(column)
    for row in rows:
        state = row.state.value
        table.add_row(
            row.cluster,
            row.node,
            row.address,
            str(row.pid or "-"),
            f"[{colours[state]}]{state}[/]",
            row.version,
            _size(row.data_bytes),
            str(row.jmx_port),
        )
    return table


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
