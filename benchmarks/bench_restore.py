"""Benchmark: the N-1 restoration sweep , solve times side by side.

For every sectional IEEE branch (or ``--branches``) a fault at peak load, as
``mgcosim restore SCENARIO --n1`` (see :func:`sim.restore_n1.run_n1_sweep`): the centralised
MILP, the independent reference and the tier-1-only maximum, each case checked for
radiality, tier-1 restoration and AC voltages. Prints the sweep's table and totals, then
the median and maximum solve times of the centralised and the independent model (and of the
tier-1 maximum). The machines are shared and noisy: compare ratios, not absolute seconds.

Usage::

    python benchmarks/bench_restore.py [SCENARIO] [--periods 4] [--branches 1,9,12]
                                       [--wind-pu 0.5] [--node-limit 5000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from mgcosim.scenarios.loader import default_scenario_path, load_scenario
from mgcosim.sim.restore import STUDY_NODE_LIMIT
from mgcosim.sim.restore_n1 import N1_PERIODS, format_n1, run_n1_sweep

METHODS = (("centralised", "centralised"), ("independent", "independent"), ("max", "tier-1 max"))


def timing_table(report: dict) -> str:
    rows = [r for r in report["rows"] if "error" not in r]
    lines = [f"  solve times over {len(rows)} cases (s)", f"  {'':12s} {'median':>8s} {'max':>8s}"]
    for key, label in METHODS:
        times = [r[f"solve_time_{key}_s"] for r in rows]
        if times:
            lines.append(f"  {label:12s} {statistics.median(times):8.2f} {max(times):8.2f}")
    case = [r["case_time_s"] for r in rows]
    if case:
        lines.append(
            f"  {'whole case':12s} {statistics.median(case):8.2f} {max(case):8.2f}"
            "  (three solves + two AC checks)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=str(default_scenario_path()))
    parser.add_argument("--periods", type=int, default=N1_PERIODS)
    parser.add_argument("--branches", help="comma-separated IEEE branches (default: all 32)")
    parser.add_argument("--wind-pu", type=float, help="flat wind share of the rating")
    parser.add_argument("--node-limit", type=int, default=STUDY_NODE_LIMIT)
    parser.add_argument("--json", help="write the sweep report as JSON to this file")
    args = parser.parse_args(argv)
    branches = [int(b) for b in args.branches.split(",")] if args.branches else None
    report = run_n1_sweep(
        load_scenario(args.scenario), args.periods, branches, args.node_limit, args.wind_pu
    )
    print(format_n1(report))
    print(timing_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
