"""Faults for a wrapped session: scenario-shaped client injector entries, and the seed's controls.

`faults` entries are what a scenario's `injectors:` list holds (`{"name": "client", "params":
{...}, "schedule": {...}}`), `InjectorSpec` objects, or `client_fault(...)`. They are validated
here, before any write: a wrong action, error name or probability fails at once.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args

from pydantic import ValidationError

from astrachaos.injectors.client import ClientParams, DriverError, driver_error
from astrachaos.injectors.interface import ClientAction
from astrachaos.scenario import InjectorSpec, Schedule

Mode = Literal["fail", "latency", "latency-after", "applied-then-error", "drop", "clock-skew"]
FaultLike = InjectorSpec | Mapping[str, Any]


def client_fault(
    action: str = "fail",
    *,
    probability: float = 1.0,
    start_s: float = 0,
    duration_s: float | None = None,
    repeat_s: float | None = None,
    toggle_ms: tuple[float, float] | None = None,
    **params: Any,
) -> InjectorSpec:
    """A typed client fault: `client_fault("fail", error="Unavailable", probability=0.2)`.

    `params` are the client injector's (`error`, `errors`, `latency_ms`, `skew_ms`); the schedule
    counts from the moment the session is wrapped.
    """
    try:
        return InjectorSpec(
            name="client",
            params={"action": action, **params},
            schedule=Schedule(
                start_s=start_s,
                duration_s=duration_s,
                repeat_s=repeat_s,
                probability=probability,
                toggle_ms=toggle_ms,
            ),
        )
    except ValidationError as error:
        raise ValueError(f"invalid fault: {error}") from None


def fault_specs(faults: Iterable[FaultLike] | FaultLike | None) -> list[InjectorSpec]:
    """Validated client-injector entries; a network, protocol or node fault is refused with a hint."""
    if faults is None:
        return []
    if isinstance(faults, (InjectorSpec, Mapping)):
        faults = [faults]
    specs: list[InjectorSpec] = []
    for index, fault in enumerate(faults):
        try:
            spec = fault if isinstance(fault, InjectorSpec) else InjectorSpec.model_validate(fault)
            if spec.name != "client":
                raise ValueError(
                    f"only client faults act inside a Python session; for {spec.name!r} faults run "
                    "`astrachaos proxy` and point the Cluster's contact points at it"
                )
            ClientParams.model_validate(spec.params)
        except ValidationError as error:
            raise ValueError(f"faults[{index}] is invalid: {error}") from None
        except ValueError as error:
            raise ValueError(f"faults[{index}]: {error}") from None
        specs.append(spec)
    return specs


class ManualControls:
    """The seed's ChaosWrapper controls: a level, a mode, a failure, on/off — a client hook."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.enabled = False
        self.level = 0.0
        self.mode: Mode = "fail"
        self.latency_ms = 100.0
        self.skew_ms = 0.0
        self._failure: Any = "WriteTimeout"

    def set_level(self, probability: float) -> None:
        """Affect this fraction of writes (0..1); a level above zero also enables the controls."""
        if not 0 <= probability <= 1:
            raise ValueError(f"level must be within 0..1, not {probability}")
        with self._lock:
            self.level = probability
            self.enabled = self.enabled or probability > 0

    def set_mode(self, mode: str, *, latency_ms: float | None = None, skew_ms: float | None = None) -> None:
        """What an affected write suffers: fail, latency(-after), applied-then-error, drop, clock-skew."""
        if mode not in get_args(Mode):
            raise ValueError(f"mode must be one of {', '.join(get_args(Mode))}, not {mode!r}")
        with self._lock:
            self.mode = mode  # type: ignore[assignment]
            self.latency_ms = self.latency_ms if latency_ms is None else latency_ms
            self.skew_ms = self.skew_ms if skew_ms is None else skew_ms

    def set_failure(self, failure: str | BaseException | type[BaseException]) -> None:
        """The error a `fail` raises: a driver error name, an exception class or an instance."""
        if isinstance(failure, str) and failure not in get_args(DriverError):
            raise ValueError(f"failure must be one of {', '.join(get_args(DriverError))}, not {failure!r}")
        if not isinstance(failure, (str, BaseException)) and not (
            isinstance(failure, type) and issubclass(failure, BaseException)
        ):
            raise ValueError(f"failure must be an exception or a driver error name, not {failure!r}")
        try:
            _instance(failure)
        except Exception as error:
            raise ValueError(f"cannot raise {failure!r}: {error}") from None
        with self._lock:
            self._failure = failure

    def decide(self, writer: int, records: int) -> ClientAction | None:
        """The action for one write while enabled, with probability `level`."""
        with self._lock:
            if not self.enabled or (self.mode != "clock-skew" and self._rng.random() >= self.level):
                return None
            mode, failure = self.mode, self._failure
            delay_s, skew_us = self.latency_ms / 1000, int(self.skew_ms * 1000)
        match mode:
            case "fail":
                return ClientAction(fail_with=_instance(failure))
            case "latency":
                return ClientAction(delay_before_s=delay_s)
            case "latency-after":
                return ClientAction(delay_after_s=delay_s)
            case "applied-then-error":
                return ClientAction(error_after_ack=driver_error("OperationTimedOut"))
            case "drop":
                return ClientAction(drop=True)
            case "clock-skew":
                return ClientAction(timestamp_skew_us=skew_us)
        raise AssertionError(mode)


def _instance(failure: Any) -> BaseException:
    if isinstance(failure, str):
        return driver_error(failure)  # type: ignore[arg-type]
    if isinstance(failure, BaseException):
        return failure
    if failure.__name__ in get_args(DriverError):  # built with the fields the driver would set
        return driver_error(failure.__name__)
    error: BaseException = failure("injected by astrachaos")
    return error
