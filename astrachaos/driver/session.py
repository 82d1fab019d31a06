"""The session factory: a driver Cluster and Session built from a profile, behind a throttler."""

from __future__ import annotations

import logging
import socket
import ssl
import zipfile
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from astrachaos.config.driver_options import DriverOptions
from astrachaos.config.settings import Profile, SslOptions
from astrachaos.driver.hosts import HostWatch
from astrachaos.driver.throttle import build_throttler
from astrachaos.driver.throttled import ThrottledSession
from astrachaos.errors import EnvironmentProblem

log = logging.getLogger(__name__)


@dataclass
class Connection:
    """An open driver cluster and session for one profile; close it (or use `with`)."""

    profile: Profile
    cluster: Any
    session: Any
    throttled: ThrottledSession
    hosts: HostWatch = field(default_factory=HostWatch)
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        """Refuse queued requests and shut the driver down (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.throttled.close()
        self.cluster.shutdown()

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def connect(profile: Profile, *, keyspace: str | None = None, **cluster_options: Any) -> Connection:
    """Open a session for `profile`; any failure → EnvironmentProblem (no secrets in it).

    `cluster_options` go to the driver's Cluster as they are (e.g. `address_translator` for
    the network proxy injectors) and win over what the profile builds.
    """
    options = {**cluster_kwargs(profile), **cluster_options}
    from cassandra.cluster import Cluster

    log.debug(
        "connecting to profile %s (%s): %s port %s, keyspace %s",
        profile.name, profile.kind, profile.contact_points, profile.port, keyspace,
    )  # fmt: skip

    try:
        cluster = Cluster(**options)  # with a bundle, this reads it and asks Astra for metadata
    except Exception as error:
        raise _problem(profile, error) from None
    hosts = HostWatch()
    cluster.register_listener(hosts)
    try:
        session = cluster.connect(keyspace)
    except Exception as error:
        cluster.shutdown()
        raise _problem(profile, error) from None
    driver = profile.driver
    # One connection per host (protocol v3+): in flight per connection stays where the driver's
    # orphaned-stream replacement (at 3/4 of 32,768 stream ids) can still happen, and the driver
    # never blocks a sender for want of a stream id.
    hosts_known = max(1, len(cluster.metadata.all_hosts()))
    throttled = ThrottledSession(
        session,
        build_throttler(driver, max_in_flight=driver.max_requests_per_connection * hosts_known),
        default_timeout_s=driver.request_timeout_ms / 1000,
        default_idempotence=driver.default_idempotence,
    )
    return Connection(profile, cluster, session, throttled, hosts)


def cluster_kwargs(profile: Profile) -> dict[str, Any]:
    """The keyword arguments of the driver's Cluster for `profile` (nothing is opened)."""
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT

    driver = profile.driver
    kwargs: dict[str, Any] = {
        "execution_profiles": {EXEC_PROFILE_DEFAULT: execution_profile(profile)},
        "compression": _compression(profile, driver),
        "idle_heartbeat_interval": driver.heartbeat_interval_s,
        "idle_heartbeat_timeout": driver.idle_heartbeat_timeout_s,
        "connect_timeout": driver.connect_timeout_s,
        "sockopts": [
            (socket.IPPROTO_TCP, socket.TCP_NODELAY, int(driver.tcp_nodelay)),
            (socket.SOL_SOCKET, socket.SO_KEEPALIVE, int(driver.keepalive)),
        ],
        "application_name": "astrachaos",
    }
    if driver.protocol_version is not None:
        kwargs["protocol_version"] = driver.protocol_version
    if profile.kind == "astra":
        assert profile.token is not None and profile.secure_connect_bundle is not None
        _check_bundle(profile)
        kwargs["cloud"] = {
            "secure_connect_bundle": str(profile.secure_connect_bundle),
            "use_default_tempdir": True,
            "connect_timeout": driver.connect_timeout_s,
        }
        kwargs["auth_provider"] = PlainTextAuthProvider("token", profile.token.get_secret_value())
        return kwargs
    kwargs["contact_points"] = list(profile.contact_points)
    kwargs["port"] = profile.port
    if profile.username is not None:
        password = profile.password.get_secret_value() if profile.password else ""
        kwargs["auth_provider"] = PlainTextAuthProvider(profile.username, password)
    if profile.ssl is not None:
        kwargs["ssl_context"] = _ssl_context(profile, profile.ssl)
    return kwargs


def execution_profile(profile: Profile) -> Any:
    """The default execution profile: load balancing, consistency, timeout, retry, speculation."""
    from cassandra import ConsistencyLevel
    from cassandra.cluster import ExecutionProfile
    from cassandra.policies import (
        ConstantSpeculativeExecutionPolicy,
        DCAwareRoundRobinPolicy,
        FallthroughRetryPolicy,
        RetryPolicy,
        TokenAwarePolicy,
    )

    driver = profile.driver
    speculative = driver.speculative_execution
    serial = driver.serial_consistency
    return ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(profile.local_dc or "")),
        # exponential: the driver fails fast and the application retries (astrachaos.driver.retry).
        retry_policy=RetryPolicy()
        if driver.retry.policy == "driver-default"
        else FallthroughRetryPolicy(),
        consistency_level=ConsistencyLevel.name_to_value[driver.consistency],
        serial_consistency_level=None if serial is None else ConsistencyLevel.name_to_value[serial],
        request_timeout=driver.request_timeout_ms / 1000,
        speculative_execution_policy=None
        if speculative is None
        else ConstantSpeculativeExecutionPolicy(
            speculative.delay_ms / 1000, speculative.max_attempts
        ),
    )


def _compression(profile: Profile, driver: DriverOptions) -> bool | str:
    if driver.compression == "none":
        return False
    from cassandra.connection import locally_supported_compressions

    if driver.compression not in locally_supported_compressions:
        raise EnvironmentProblem(
            f"profile {profile.name!r} asks for {driver.compression} compression, but the "
            f"{driver.compression} Python package is not installed",
            hint=f"pip install {'lz4' if driver.compression == 'lz4' else 'python-snappy'}, "
            "or set driver.compression: none",
        )
    return driver.compression


def _ssl_context(profile: Profile, options: SslOptions) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        if options.ca_file is not None:
            context.load_verify_locations(cafile=str(options.ca_file))
        else:
            context.load_default_certs()
        if options.cert_file is not None:
            keyfile = None if options.key_file is None else str(options.key_file)
            context.load_cert_chain(str(options.cert_file), keyfile)
    except (OSError, ssl.SSLError) as error:
        raise EnvironmentProblem(
            f"profile {profile.name!r}: cannot load the TLS files: {error}",
            hint="check ssl.ca_file, ssl.cert_file and ssl.key_file (PEM files)",
        ) from None
    if not options.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def preflight(profile: Profile) -> None:
    """Every check of a profile that needs no database (the Astra bundle); run before any write."""
    if profile.kind == "astra":
        _check_bundle(profile)


def _check_bundle(profile: Profile) -> None:
    bundle = profile.secure_connect_bundle
    if bundle is None or not bundle.is_file():
        raise EnvironmentProblem(
            f"profile {profile.name!r}: the secure connect bundle {bundle} does not exist",
            hint="download it from the Astra console (Connect) and set secure_connect_bundle",
        )
    if not zipfile.is_zipfile(bundle):
        raise EnvironmentProblem(
            f"profile {profile.name!r}: the secure connect bundle {bundle} is not a zip file",
            hint="download the bundle again from the Astra console",
        )
    try:
        with zipfile.ZipFile(bundle) as archive:
            missing = sorted(BUNDLE_FILES - set(archive.namelist()))
    except (OSError, zipfile.BadZipFile) as error:
        raise EnvironmentProblem(
            f"profile {profile.name!r}: cannot read the secure connect bundle {bundle}: {error}",
            hint="download the bundle again from the Astra console",
        ) from None
    if missing:
        raise EnvironmentProblem(
            f"profile {profile.name!r}: the secure connect bundle {bundle} lacks {', '.join(missing)}",
            hint="download the bundle again from the Astra console",
        )


BUNDLE_FILES = frozenset({"config.json", "ca.crt", "cert", "key"})


def _problem(profile: Profile, error: BaseException) -> EnvironmentProblem:
    if isinstance(error, EnvironmentProblem):
        return error
    target = (
        f"Astra with the secure connect bundle {profile.secure_connect_bundle}"
        if profile.kind == "astra"
        else f"{', '.join(profile.contact_points)} port {profile.port}"
    )
    reason = _scrub(profile, _reason(error))
    if "AuthenticationFailed" in reason or "BadCredentials" in reason:
        hint = (
            "check the application token (ASTRA_DB_APPLICATION_TOKEN)"
            if profile.kind == "astra"
            else "check username and password (ASTRACHAOS_USERNAME, ASTRACHAOS_PASSWORD)"
        )
        return EnvironmentProblem(f"authentication failed at {target}: {reason}", hint=hint)
    if profile.kind == "astra":
        hint = (
            "check that the bundle is complete (config.json, ca.crt, cert, key), that the "
            "database is active, and that its host is reachable"
        )
    elif profile.kind == "local":
        hint = "is the local cluster running? `astrachaos local up`"
    else:
        hint = "check contact_points, port and that native transport is enabled on the nodes"
    return EnvironmentProblem(f"cannot connect to {target}: {reason}", hint=hint)


def _reason(error: BaseException) -> str:
    if type(error).__name__ == "UnresolvableContactPoints":
        return "no contact point resolves to an address"
    per_host = getattr(error, "errors", None)
    if isinstance(per_host, dict) and per_host:
        parts = [f"{host}: {type(e).__name__}: {e}"[:300] for host, e in list(per_host.items())[:3]]
        more = f" (and {len(per_host) - 3} more)" if len(per_host) > 3 else ""
        return f"{type(error).__name__}: " + "; ".join(parts) + more
    cause = error.__context__ or error.__cause__
    if cause is not None and cause is not error:
        # The driver raises "Unable to connect to the metadata service" while handling the
        # real cause (an expired certificate, a refused connection): name it.
        return f"{type(error).__name__}: {error} (cause: {type(cause).__name__}: {cause})"[:500]
    return f"{type(error).__name__}: {error}"[:500]


def _scrub(profile: Profile, text: str) -> str:
    for secret in (profile.password, profile.token):
        if secret is not None and secret.get_secret_value():
            text = text.replace(secret.get_secret_value(), "********")
    return text
