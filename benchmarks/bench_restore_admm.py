"""Benchmark: restoration ADMM (seed 001) vs the centralised MILP, side by side in one run.

For a scenario's first fault (default ``scenarios/fault_midday.toml``) or for faults on
given sectional branches at the same time, each case solves the centralised MILP, the
sub-network ADMM and the independent reference ``--runs`` times, alternating, and prints
per case: ADMM iterations, objective gap to the centralised, load shed of each method, and
the median solve times with their ratio (the seed reports <= 35 iterations and 30 % of the
centralised time). The machines are shared and noisy: compare the ratios.

Usage::

    python benchmarks/bench_restore_admm.py [SCENARIO] [--branches 6,12] [--margin-h 1]
                                            [--runs 3] [--node-limit 5000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

from mgcosim.controllers.dso import dso_data
from mgcosim.controllers.restoration import build_restoration_model
from mgcosim.controllers.restoration_admm import solve_restoration_admm
from mgcosim.controllers.restoration_solve import solve_independent, solve_restoration
from mgcosim.controllers.solve import MipLimits
from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.scenarios.loader import load_scenario
from mgcosim.sim.restore import MIP_REL_GAP, build_inputs, first_fault


def shed_kwh(result, dt_h: float) -> float:
    per_period = (sum(p.unserved_mw_by_tier.values()) for p in result.periods)
    return 1000 * dt_h * sum(per_period)


def case(scenario, fault, margin_h: float, runs: int, node_limit: int) -> dict:
    limits = MipLimits(rel_gap=MIP_REL_GAP, node_limit=node_limit)
    dd = dso_data(build_ieee33(scenario.data), scenario.data)
    inp = build_inputs(scenario, dd, fault, margin_h)
    times: dict[str, list[float]] = {"centralised": [], "admm": [], "independent": []}
    for _ in range(runs):
        start = time.perf_counter()
        central = solve_restoration(build_restoration_model(dd, scenario.data, inp), limits)
        times["centralised"].append(time.perf_counter() - start)
        start = time.perf_counter()
        admm = solve_restoration_admm(dd, scenario.data, inp)
        times["admm"].append(time.perf_counter() - start)
        start = time.perf_counter()
        independent, _ = solve_independent(dd, scenario.data, inp, limits)
        times["independent"].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "branch": fault.branch_ieee,
        "periods": inp.n_periods,
        "central_status": central.status,
        "converged": admm.converged,
        "outer": admm.outer_iterations,
        "inner": admm.inner_iterations,
        "gap_pct": 100
        * (admm.result.objective_cny - central.objective_cny)
        / abs(central.objective_cny),
        "shed": {
            "independent": shed_kwh(independent, inp.dt_h),
            "admm": shed_kwh(admm.result, inp.dt_h),
            "centralised": shed_kwh(central, inp.dt_h),
        },
        "median_s": med,
        "ratio": med["admm"] / med["centralised"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="scenarios/fault_midday.toml")
    parser.add_argument("--branches", help="faults on these branches instead (same time)")
    parser.add_argument("--margin-h", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--node-limit", type=int, default=5000)
    args = parser.parse_args(argv)
    scenario = load_scenario(args.scenario)
    base = first_fault(scenario)
    faults = (
        [replace(base, name=f"f{b}", branch_ieee=int(b)) for b in args.branches.split(",")]
        if args.branches
        else [base]
    )
    print(
        f"{scenario.name}: faults at {base.start_s / 3600:g} h for {base.repair_s / 3600:g} h "
        f"+ {args.margin_h:g} h margin; medians of {args.runs} runs (s)"
    )
    print(
        f"  {'branch':>6s} {'T':>3s} {'outer':>5s} {'inner':>5s} {'gap %':>8s} "
        f"{'shed ind/admm/cen kWh':>24s} {'cen s':>7s} {'admm s':>7s} {'ind s':>7s} {'ratio':>6s}"
    )
    for fault in faults:
        r = case(scenario, fault, args.margin_h, args.runs, args.node_limit)
        shed = "/".join(f"{r['shed'][k]:.0f}" for k in ("independent", "admm", "centralised"))
        med = r["median_s"]
        print(
            f"  {r['branch']:>6d} {r['periods']:>3d} {r['outer']:>5d} {r['inner']:>5d} "
            f"{r['gap_pct']:>8.3f} {shed:>24s} {med['centralised']:>7.1f} {med['admm']:>7.1f} "
            f"{med['independent']:>7.1f} {r['ratio']:>6.2f}"
            + ("" if r["converged"] else "  (ADMM not converged)")
            + ("" if r["central_status"] == "optimal" else f"  (centralised {r['central_status']})")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
