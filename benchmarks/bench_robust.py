"""Benchmark: MESS pre-positioning by C&CG on the default case.

The default case of :func:`controllers.robust_data.robust_case` (branches 12, 22 and 37 damaged,
main grid lost, 4 hourly periods from 10:00, ``networks/data/mess.csv``). Runs the robust
C&CG ``--runs`` times, each from scratch (subproblem and recourse models built inside the
timing, as a caller would), and prints the iterations and bounds of the last run and the
median, minimum and maximum wall time; then the seed's four-row comparison
(:func:`controllers.robust_ccg.compare`) once. The machines are shared and noisy: compare
ratios, not absolute seconds.

Usage::

    python benchmarks/bench_robust.py [--runs 3] [--gap 1e-3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from mgcosim.controllers.dso import dso_data
from mgcosim.controllers.robust_ccg import (
    compare,
    comparison_dict,
    format_iterations,
    format_table,
    solve_robust,
)
from mgcosim.controllers.robust_data import robust_case
from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.networks.params import load_network_data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="C&CG runs timed (default 3)")
    parser.add_argument("--gap", type=float, default=1e-3, help="relative C&CG gap")
    parser.add_argument("--json", help="write the figures as JSON to this file")
    args = parser.parse_args(argv)
    data = load_network_data()
    case = robust_case(dso_data(build_ieee33(data), data), data)
    times, masters, subs, result = [], [], [], None
    for _ in range(args.runs):
        start = time.perf_counter()
        result = solve_robust(case, gap=args.gap)
        times.append(time.perf_counter() - start)
        masters.append(sum(it.master_time_s for it in result.iterations))
        subs.append(sum(it.subproblem_time_s for it in result.iterations))
    assert result is not None
    print(f"C&CG on the default case, gap {args.gap:g} (last of {args.runs} runs):")
    print(format_iterations(result))
    print(
        f"  wall time over {args.runs} runs: median {statistics.median(times):.2f} s "
        f"(min {min(times):.2f}, max {max(times):.2f}); of which master solves "
        f"{statistics.median(masters):.2f} s, subproblems {statistics.median(subs):.2f} s "
        "(medians)"
    )
    start = time.perf_counter()
    comparison = compare(case, gap=args.gap)
    print(f"Robust vs deterministic ({time.perf_counter() - start:.2f} s for the four rows):")
    print(format_table(comparison))
    if args.json:
        report = {
            "runs": args.runs,
            "ccg_time_s": times,
            "ccg_time_s_median": statistics.median(times),
            "iterations": len(result.iterations),
            "lower_bound_cny": result.lower_bound_cny,
            "upper_bound_cny": result.upper_bound_cny,
            "gap": result.gap,
        } | comparison_dict(comparison)
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2))
        print(f"  JSON {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
