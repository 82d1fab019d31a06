"""`python -m bench [--quick]`: run the benchmarks, print the table, write results/latest.json."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.plan import FULL, QUICK
from bench.report import table_text
from bench.suite import run_suite

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    """Parse, run, render, save; exit 0 once measured (missed goals show in the table)."""
    args = _parser().parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.repetitions is not None:
        plan = replace(plan, repetitions=args.repetitions)
    if args.records is not None:
        plan = replace(plan, records=args.records)
    if args.rss_records is not None:
        plan = replace(plan, rss_records=args.rss_records)
    command = shlex.join([Path(sys.executable).name, "-m", "bench", *sys.argv[1:]])
    with tempfile.TemporaryDirectory(prefix="astrachaos-bench-") as workdir:
        report = run_suite(plan, Path(workdir), command, _say, measure_rss=not args.no_rss)
    print(table_text(report))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report.to_json_dict(), indent=2) + "\n")
    print(f"results: {RESULTS / 'latest.json'}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a trial")
    parser.add_argument("--repetitions", type=int, help="repetitions of metrics 1 and 2")
    parser.add_argument("--records", type=int, help="records per repetition")
    parser.add_argument("--rss-records", type=int, help="records of the peak-RSS run")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS run")
    return parser


def _say(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
