"""`astrachaos proxy`: the standalone CQL fault proxy, and `astrachaos proxy ctl` for its API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from astrachaos.errors import ExitCode, UsageProblem

app = typer.Typer(
    help="A CQL fault proxy for any application: faults, peer rewriting, write capture.",
    no_args_is_help=False,
)
ctl = typer.Typer(help="Talk to a running proxy's control API.", no_args_is_help=True)
app.add_typer(ctl, name="ctl")

ApiOption = Annotated[str, typer.Option("--api", help="The proxy's control API, HOST:PORT.")]


@app.callback(invoke_without_command=True)
def proxy(
    ctx: typer.Context,
    upstream: Annotated[
        list[str] | None, typer.Option(help="A node HOST:PORT (repeat for each node).")
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="Take the nodes (and credentials) from a profile.")
    ] = None,
    listen: Annotated[
        str, typer.Option(help="Listener of the first node, HOST:PORT (the next nodes: +1).")
    ] = ("127.0.0.1:9142"),
    faults: Annotated[Path | None, typer.Option(help="Injectors to run: a faults or scenario YAML.")] = None,
    capture: Annotated[
        Path | None, typer.Option(help="Record every write that passes in this directory.")
    ] = None,
    api: ApiOption = "127.0.0.1:8474",
    no_api: Annotated[bool, typer.Option("--no-api", help="Do not start the control API.")] = False,
    duration: Annotated[float | None, typer.Option(min=0, help="Stop after this many seconds.")] = None,
    random_seed: Annotated[int, typer.Option("--seed", help="Random seed of the faults.")] = 0,
    tcp: Annotated[
        bool,
        typer.Option(
            "--tcp",
            help="Forward bytes without reading CQL (TLS clients): network faults only, no capture.",
        ),
    ] = False,
) -> None:
    """Run the proxy until Ctrl-C, SIGTERM or --duration; faults are rolled back on every exit."""
    if ctx.invoked_subcommand is not None:
        return
    import signal
    import threading

    from astrachaos.cli.console import stdout
    from astrachaos.proxy import hot_path
    from astrachaos.standalone.api import ControlApi
    from astrachaos.standalone.service import (
        SchemaSession,
        StandaloneProxy,
        parse_address,
        read_faults,
        serve,
        upstreams_of_profile,
    )

    if bool(upstream) == bool(profile):
        raise UsageProblem("give --upstream HOST:PORT (repeatable) or --profile NAME")
    nodes = [parse_address(u, 9042) for u in upstream or []] or upstreams_of_profile(profile or "")
    entries = read_faults(faults) if faults is not None else []

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored (`&`)
    schema = SchemaSession(nodes, profile) if capture is not None else None
    service: StandaloneProxy | None = None
    control: ControlApi | None = None
    try:
        service = StandaloneProxy(
            nodes, parse_address(listen), capture_dir=capture,
            schema_session=None if schema is None else schema.session, random_seed=random_seed,
            passthrough=tcp,
        )  # fmt: skip
        service.start()
        for entry in entries:
            service.add_fault(entry)
        if not no_api:
            control = ControlApi(service, parse_address(api))
            control.start()
        for node, (host, port) in service.routes.items():
            stdout.print(f"listening {host}:{port} -> {node[0]}:{node[1]}", soft_wrap=True)
        if tcp:
            stdout.print("mode: tcp (bytes forwarded unread: network faults only)", soft_wrap=True)
        else:
            stdout.print(f"hot path: {hot_path()}", soft_wrap=True)
        first = next(iter(service.routes.values()))
        stdout.print(f"contact point: {first[0]}:{first[1]}", soft_wrap=True)
        if control is not None:
            stdout.print(f"control API: http://{control.address[0]}:{control.address[1]}", soft_wrap=True)
        if capture is not None:
            stdout.print(f"capture: {capture}", soft_wrap=True)
        stdout.file.flush()
        serve(service, duration, threading.Event())
    except KeyboardInterrupt:
        _shutdown(control, service, schema)
        stdout.print("interrupted: faults rolled back, nothing listening")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    except BaseException:
        _shutdown(control, service, schema)
        raise
    _shutdown(control, service, schema)
    stdout.print("stopped: faults rolled back, nothing listening")


def _shutdown(control: Any, service: Any, schema: Any) -> None:
    import signal

    from astrachaos.cli.console import stderr

    # A second Ctrl-C must not cut the rollback short.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if control is not None:
            control.close()
        if service is not None:
            backlog = service.capture_backlog_bytes()
            if backlog >= 16_000_000:  # seconds of work: say why the exit waits
                stderr.print(f"capture: {backlog / 1e6:,.0f} MB of captured writes go into capture.sqlite "
                             "before the proxy exits (faults are rolled back first)")  # fmt: skip
            service.close()
        if schema is not None:
            schema.close()
    finally:
        signal.signal(signal.SIGINT, previous)


@ctl.command("list")
def ctl_list(api: ApiOption = "127.0.0.1:8474") -> None:
    """The faults in force."""
    _print(_call(api, "GET", "/faults"))


@ctl.command("add")
def ctl_add(
    source: Annotated[str, typer.Argument(help="A faults/scenario YAML file, or one injector as JSON.")],
    api: ApiOption = "127.0.0.1:8474",
) -> None:
    """Add faults (each injector of a YAML file, or one given as JSON)."""
    from astrachaos.standalone.service import read_faults

    path = Path(source)
    entries = read_faults(path) if path.is_file() else [_json_object(source)]
    for entry in entries:
        _print(_call(api, "POST", "/faults", entry))


@ctl.command("remove")
def ctl_remove(
    label: Annotated[str, typer.Argument(help="The fault's label.")], api: ApiOption = "127.0.0.1:8474"
) -> None:
    """Roll one fault back and remove it."""
    from urllib.parse import quote

    _print(_call(api, "DELETE", f"/faults/{quote(label)}"))


@ctl.command("reset")
def ctl_reset(api: ApiOption = "127.0.0.1:8474") -> None:
    """Roll every fault back."""
    _print(_call(api, "POST", "/reset"))


@ctl.command("stats")
def ctl_stats(api: ApiOption = "127.0.0.1:8474") -> None:
    """Requests, injections by type, connections, bytes, capture counts."""
    _print(_call(api, "GET", "/stats"))


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise UsageProblem(f"{text!r} is neither a file nor a JSON object") from None
    if not isinstance(value, dict):
        raise UsageProblem('one injector as a JSON object, e.g. \'{"name": "protocol", ...}\'')
    return value


def _call(api: str, method: str, path: str, body: Any = None) -> Any:
    import urllib.error
    import urllib.request

    from astrachaos.errors import EnvironmentProblem

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{api}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        detail = json.loads(error.read() or b"{}").get("error", error.reason)
        raise UsageProblem(f"the proxy refused: {detail}") from None
    except OSError as error:
        raise EnvironmentProblem(f"no proxy control API at {api}: {error}") from None


def _print(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))
