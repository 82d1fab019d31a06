"""One proxy set per target, shared by every injector of the process that needs it."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from astrachaos.proxy.server import ProxySet

_lock = threading.Lock()
_open: dict[tuple[tuple[str, ...], int], tuple[ProxySet, int]] = {}


def acquire(targets: Sequence[str], port: int, *, random_seed: int = 0) -> ProxySet:
    """The started proxy set for these nodes (started now if no injector holds it yet)."""
    key = (tuple(targets), port)
    with _lock:
        held = _open.get(key)
        if held is not None:
            _open[key] = (held[0], held[1] + 1)
            return held[0]
        proxies = ProxySet(targets, port, random_seed=random_seed)
        proxies.start()
        _open[key] = (proxies, 1)
        return proxies


def release(proxies: ProxySet) -> None:
    """Give a proxy set back; the last holder's release stops it."""
    with _lock:
        for key, (held, holders) in list(_open.items()):
            if held is proxies:
                if holders > 1:
                    _open[key] = (held, holders - 1)
                    return
                del _open[key]
                break
    proxies.close()
