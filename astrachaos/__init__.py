"""astrachaos: find out whether an application that writes to Cassandra or Astra DB loses records.

The Python API (`chaos`, `Chaos`, `Verdict`, `client_fault`, `AppLog`) is imported lazily, so
`import astrachaos` (and `astrachaos --help`) loads neither the driver nor the capture code.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "chaos": "astrachaos.wrap.chaos",
    "Chaos": "astrachaos.wrap.chaos",
    "ChaosStats": "astrachaos.wrap.chaos",
    "Verdict": "astrachaos.wrap.verdict",
    "AppLog": "astrachaos.wrap.applog",
    "client_fault": "astrachaos.wrap.faults",
    "ChaosSession": "astrachaos.dropin.session",
}
__all__ = [
    "AppLog",
    "Chaos",
    "ChaosSession",
    "ChaosStats",
    "Verdict",
    "__version__",
    "chaos",
    "client_fault",
]

if TYPE_CHECKING:
    from astrachaos.dropin.session import ChaosSession
    from astrachaos.wrap.applog import AppLog
    from astrachaos.wrap.chaos import Chaos, ChaosStats, chaos
    from astrachaos.wrap.faults import client_fault
    from astrachaos.wrap.verdict import Verdict


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'astrachaos' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
