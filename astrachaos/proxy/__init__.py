"""A loopback TCP proxy per node, with network toxics and CQL-aware request faults."""


def hot_path() -> str:
    """How the relay's per-frame and per-write code runs here: "compiled (mypyc)" when the wheel
    carried its extension modules (see setup.py), else "pure Python"."""
    from astrachaos.proxy import cql

    return "pure Python" if (cql.__file__ or "").endswith(".py") else "compiled (mypyc)"
