"""Benchmark: restoration ADMM (seed 001) vs the centralised MILP, side by side in one run.

For a scenario's first fault (default ``scenarios/fault_midday.toml``) or for faults on
given sectional branches at the same time, each case solves the centralised MILP, the
sub-network ADMM and the independent reference ``--runs`` times, alternating, and prints
per case: ADMM iterations, objective gap to the centralised, load shed of each method, and
the median solve times with their ratio (the seed reports <= 35 iterations and 30 % of the
centralised time). The machines are shared and noisy: compare the ratios.

By default every method solves the event in uniform 15-min periods, the MILPs proven to
the study's gap (``sim/restore.py``'s ``MIP_REL_GAP``). ``--as-cosim`` solves it as the
co-simulation's first plan of the fault instead: the controller's periods (the first hour
in steps, then hourly look-ahead), the centralised MILP from the first-step MIP start at
the controller's gap (``RESTORATION_LIMITS``), the ADMM with the controller's settings.

Usage::

    python benchmarks/bench_restore_admm.py [SCENARIO] [--branches 6,12] [--margin-h 1]
                                            [--runs 3] [--node-limit 5000] [--as-cosim]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

from mgcosim.controllers.dso import dso_data
from mgcosim.controllers.restoration import build_restoration_model
from mgcosim.controllers.restoration_admm import RestorationADMMSettings, solve_restoration_admm
from mgcosim.controllers.restoration_controller import RestorationController, plan_model
from mgcosim.controllers.restoration_data import in_periods
from mgcosim.controllers.restoration_solve import (
    RESTORATION_LIMITS,
    first_step_start,
    solve_independent,
    solve_restoration,
)
from mgcosim.controllers.solve import MipLimits, persistent_highs
from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.scenarios.loader import load_scenario
from mgcosim.sim.restore import MIP_REL_GAP, build_inputs, first_fault


def shed_kwh(result, inp) -> float:
    """DSO load shed over the horizon (periods of their own lengths)."""
    per_period = (sum(p.unserved_mw_by_tier.values()) for p in result.periods)
    return 1000 * sum(h * mw for h, mw in zip(inp.durations_h, per_period, strict=True))


def centralised_as_cosim(dd, data, inp):
    """The controller's centralised plan: its loss estimate, from the first-step MIP start,
    one HiGHS load (before the loss refinement, which the ADMM's plan does not have)."""
    model = plan_model(dd, data, inp)
    solver = persistent_highs()
    start, _ = first_step_start(model, RESTORATION_LIMITS, solver)
    return solve_restoration(model, RESTORATION_LIMITS, start, solver)


def case(scenario, fault, margin_h: float, runs: int, node_limit: int, cosim: bool) -> dict:
    limits = MipLimits(rel_gap=MIP_REL_GAP, node_limit=node_limit)
    net = build_ieee33(scenario.data)
    dd = dso_data(net, scenario.data)
    inp = build_inputs(scenario, dd, fault, margin_h)
    settings = RestorationADMMSettings()
    if cosim:
        ctrl = RestorationController(scenario.data, net)
        inp = in_periods(inp, ctrl.period_steps(inp.n_periods), ctrl.fine_periods(inp.n_periods))
        limits = RESTORATION_LIMITS
        settings = replace(settings, node_limit=limits.node_limit)  # as the controller's
    times: dict[str, list[float]] = {"centralised": [], "admm": [], "independent": []}
    for _ in range(runs):
        start = time.perf_counter()
        if cosim:
            central = centralised_as_cosim(dd, scenario.data, inp)
        else:
            central = solve_restoration(build_restoration_model(dd, scenario.data, inp), limits)
        times["centralised"].append(time.perf_counter() - start)
        start = time.perf_counter()
        admm = solve_restoration_admm(dd, scenario.data, inp, settings)
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
            "independent": shed_kwh(independent, inp),
            "admm": shed_kwh(admm.result, inp),
            "centralised": shed_kwh(central, inp),
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
    parser.add_argument("--as-cosim", action="store_true", help="as the controller plans it")
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
        r = case(scenario, fault, args.margin_h, args.runs, args.node_limit, args.as_cosim)
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
