"""Benchmark: do restoration plans hold in AC at their own operating point? N-1 and N-2.

For every N-1 case (the 32 sectional branches, as ``mgcosim restore --n1``) and a seeded
set of N-2 pairs (the draw of ``scenarios/sweep_n2.toml`` by default), the centralised
restoration plan as the co-simulation makes a fault's first plan (from the first-step MIP
start, MILP proven to its gap, then its dispatch re-solved on exact losses,
:func:`controllers.restoration_controller.tight_plan`), on
nominal data (load 1.0, wind 0.5, PV 0.5 pu, main grid on, 2 periods of 15 min), is checked
by an AC power flow of its first period's own injections, PV reactive power included
(:class:`controllers.restoration_check.RestorationACCheck`). The plan keeps every energised
bus in [0.90, 1.05] pu, so every AC violation is one the plan did not expect. Prints one row
per case and the totals; targets: 0 violations, loss error <= 0.5 %, |dV| <= 0.003 pu, and
every MILP optimal, median <= 2 s, max <= 10 s ("MILP s": the start's and the plan's
solves, loading into HiGHS included; "s": the whole plan with its loss refinement).

    python benchmarks/bench_restore_n2.py [--pairs 12] [--seed 16] [--no-n1]
"""

from __future__ import annotations

import argparse
import statistics
import time

from mgcosim.controllers.dso import dso_data
from mgcosim.controllers.restoration_check import RestorationACCheck
from mgcosim.controllers.restoration_controller import (
    RESTORATION_LIMITS,
    plan_model,
    tight_plan,
)
from mgcosim.controllers.restoration_data import nominal_inputs
from mgcosim.controllers.restoration_solve import first_step_start
from mgcosim.controllers.solve import persistent_highs
from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.networks.params import load_network_data
from mgcosim.sim.sweep_spec import draw_fault_cases, sectional_branches

ROW = "{:10} {:>6} {:>6} {:>9} {:>9} {:>10} {:>11} {:>8} {:>5} {:>6} {:>6}"
HEAD = ("case", "status", "buses", "model kW", "AC kW", "loss err %", "|dV| max pu", "Vmin pu")


def check_case(dd, data, check: RestorationACCheck, faulted: list[int]) -> dict:
    """Plan one fault case and check its first period in AC."""
    inp = nominal_inputs(
        dd, data, n_periods=2, faulted=set(faulted), main_grid_available=True, pv_pu=0.5
    )
    info: dict = {}
    t0 = time.perf_counter()
    model = plan_model(dd, data, inp)
    solver = persistent_highs()
    start, start_s = first_step_start(model, RESTORATION_LIMITS, solver)
    result = tight_plan(model, dd, RESTORATION_LIMITS, info, start, start_s, solver)
    seconds = time.perf_counter() - t0
    first = result.periods[0]
    out = check.check(first, inp, dd)
    return out | {
        "status": result.status,
        "buses": len(first.energised_buses),
        "refine": info.get("loss_refine", ""),
        "seconds": seconds,
        "milp_s": result.solve_time_s,
    }


def print_row(label: str, r: dict) -> None:
    print(
        ROW.format(
            label,
            str(r["status"])[:6],
            r["buses"],
            f"{1000 * r['model_loss_mw']:.2f}",
            f"{1000 * r.get('ac_loss_mw', float('nan')):.2f}",
            f"{r.get('loss_error_pct', float('nan')):+.3f}",
            f"{r.get('v_error_max_pu', float('nan')):.5f}",
            f"{r.get('ac_vmin_pu', float('nan')):.4f}",
            r.get("ac_v_violations", "-"),
            f"{r['milp_s']:.2f}",
            f"{r['seconds']:.1f}",
        )
    )


def print_totals(name: str, rows: list[dict]) -> None:
    ok = [r for r in rows if r.get("ac_converged")]
    print(
        f"{name}: {len(rows)} cases, {sum(r['status'] == 'optimal' for r in rows)} optimal, "
        f"{len(rows) - len(ok)} AC not converged, "
        f"{sum(r.get('ac_v_violations', 0) > 0 for r in ok)} cases with AC violations "
        f"({sum(r.get('ac_v_violations', 0) for r in ok)} bus violations); "
        f"max |loss err| {max(abs(r['loss_error_pct']) for r in ok):.3f} %, "
        f"max |dV| {max(r['v_error_max_pu'] for r in ok):.5f} pu; "
        f"MILP s median {statistics.median(r['milp_s'] for r in rows):.2f}, "
        f"max {max(r['milp_s'] for r in rows):.2f}; "
        f"plan s median {statistics.median(r['seconds'] for r in rows):.1f}, "
        f"max {max(r['seconds'] for r in rows):.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=12, help="N-2 pairs drawn (default 12)")
    parser.add_argument("--seed", type=int, default=16, help="seed of the draw (default 16)")
    parser.add_argument("--no-n1", action="store_true", help="skip the N-1 cases")
    args = parser.parse_args()
    data = load_network_data()
    dd = dso_data(build_ieee33(data), data)
    check = RestorationACCheck(data)
    branches = sectional_branches(data)
    sets = {} if args.no_n1 else {"N-1": [[b] for b in branches]}
    sets[f"N-2 (seed {args.seed})"] = draw_fault_cases(branches, args.pairs, 2, args.seed)
    print(ROW.format(*HEAD, "viol", "MILP s", "s"))
    for name, cases in sets.items():
        rows = []
        for faulted in cases:
            rows.append(check_case(dd, data, check, faulted))
            print_row("+".join(map(str, faulted)), rows[-1])
        print_totals(name, rows)


if __name__ == "__main__":
    main()
