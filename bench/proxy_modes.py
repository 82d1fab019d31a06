"""`python -m bench.proxy_modes [ROWS] [REPETITIONS]`: what each layer of the proxy costs a client.

The same client (the raw Python driver, `execute_concurrent_with_args` at concurrency 64) writes
ROWS rows straight to the local node and through four proxies started side by side: `--tcp`
(bytes forwarded, nothing read), CQL (frames read, no capture) and `--capture`, all run from this
checkout's source (pure Python), and `--capture` as the wheel ships it (hot path compiled,
`bench/shipped.py`). The five are interleaved in rotating order; printed per mode: the median
rows/s, its ratio to direct, and the median CPU µs per row of the client, the node and the proxy.

    python -m bench.proxy_modes [ROWS] [REPETITIONS] [--compare DIR]

`--compare DIR` adds a sixth mode, `--capture` run by the astrachaos in DIR (another commit's
tree, e.g. `git archive d18a36c astrachaos | tar -x -C DIR`): a before/after in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from bench.capture_proxy import _Cpu, _node_pid, _Proxy, _session, _table, _write
from bench.shipped import tree

KS = "proxy_bench"
CONCURRENCY = 64


def main(rows: int, repetitions: int, compare: Path | None = None) -> None:
    """Interleave the modes; print each one's medians."""
    with tempfile.TemporaryDirectory() as tmp:
        proxies = {
            "--tcp": _Proxy(None, ("--tcp",)),
            "CQL": _Proxy(None),
            "--capture": _Proxy(Path(tmp) / "c"),
            "--capture, as shipped": _Proxy(Path(tmp) / "shipped", cwd=tree()),
        }
        if compare is not None:
            proxies[f"--capture ({compare})"] = _Proxy(Path(tmp) / "compared", cwd=compare)
        try:
            cluster, direct = _session(9042)
            table = _table(direct)
            sessions = {"direct": direct, **{mode: _session(p.port)[1] for mode, p in proxies.items()}}
            cpu = _Cpu(_node_pid())
            rates: dict[str, list[float]] = {mode: [] for mode in sessions}
            first = 0
            for session in sessions.values():  # warm-up: prepares, the node's JIT and caches
                _write(session, table, first, 5_000, CONCURRENCY)
                first += 5_000
            modes = list(sessions)
            for rep in range(repetitions):
                for mode in modes[rep % len(modes) :] + modes[: rep % len(modes)]:
                    proxy = proxies[mode].process.pid if mode in proxies else None
                    rates[mode].append(
                        cpu.measure(mode, proxy, sessions[mode], table, first, rows, CONCURRENCY)
                    )
                    first += rows
            direct.execute(f"DROP TABLE {KS}.{table}")
            cluster.shutdown()
        finally:
            for proxy_process in proxies.values():
                proxy_process.stop()
    base = statistics.median(rates["direct"])
    costs = cpu.medians()
    for mode, measured in rates.items():
        rate = statistics.median(measured)
        per_row = ", ".join(f"{name.split('_')[0]} {us}" for name, us in costs[mode].items())
        print(f"{mode}: {rate:,.0f} rows/s, {rate / base:.2f} of direct; CPU us per row: {per_row}")
    print(f"medians of {repetitions} x {rows:,} rows, load average {os.getloadavg()[0]:.1f} after")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.proxy_modes", description=__doc__)
    parser.add_argument("rows", type=int, nargs="?", default=20_000)
    parser.add_argument("repetitions", type=int, nargs="?", default=3)
    parser.add_argument("--compare", type=Path, help="another commit's tree, its proxy as a fifth mode")
    args = parser.parse_args()
    main(args.rows, args.repetitions, None if args.compare is None else args.compare.resolve())
