"""Benchmark: the DSO models against AC at their own operating point (README: Model accuracy).

Prints one table, each row a model and a case, before (the initial tangent cuts alone, no
refinement) and after (Kelley refinement, :mod:`controllers.loss_cuts`):

* reconfiguration snapshot (``mgcosim reconfigure --periods 1``), without and with
  microgrids: the MILP's topology, its model losses against pandapower's AC losses of that
  topology, max |V_model - V_ac|; refinement rounds and proven gap;
* the DSO dispatch model over the default day's hourly horizons (``--every``: every n-th
  hour), on the day's seeded forecasts, DSO alone (microgrid exchanges fixed at their
  expected net demand, default topology): each horizon's first period checked by an AC
  power flow of its own injections (:class:`controllers.plan_check.PlanACCheck`); the
  worst and mean |loss error| in % of AC losses and the worst voltage error over horizons.

Targets: loss error <= 0.5 % of AC losses, max |V_opt - V_ac| <= 0.003 pu. Usage::

    python benchmarks/bench_accuracy.py [--every 1] [--skip-reconfigure]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

from mgcosim.controllers import dso
from mgcosim.controllers.loss_cuts import CUTS, RECONFIG_CUTS, CutSettings
from mgcosim.controllers.topology import solve_reconfiguration
from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.scenarios.loader import default_scenario_path, load_scenario
from mgcosim.sim.accuracy import dso_day_errors
from mgcosim.sim.reconfigure import ac_check, build_case

NO_REFINEMENT = CutSettings(max_rounds=0)
HEADER = (
    f"{'case':<34s} {'cuts':<8s} {'open branches':<20s} {'model kW':>9s} {'AC kW':>9s} "
    f"{'loss err %':>10s} {'|dV| max pu':>11s} {'rounds':>6s} {'gap %':>7s}"
)


def reconfigure_rows(scenario, microgrids: bool) -> list[str]:
    data = scenario.data
    dd = dataclasses.replace(dso.dso_data(build_ieee33(data), data), switch_cost=0.0)
    case = build_case(scenario, 1, microgrids)
    name = f"reconfigure snapshot, {'with' if microgrids else 'no'} microgrids"
    rows = []
    for label, cuts in (("initial", NO_REFINEMENT), ("refined", RECONFIG_CUTS)):
        res = solve_reconfiguration(
            dd,
            case.load_scale,
            case.pm_mw,
            case.pv_mw,
            dso.default_topology(dd),
            74,
            mg_q_mvar=case.mg_q_mvar,
            cuts=cuts,
        )
        ac = ac_check(data, res.closed[0], case, res.v_pu[0])
        model_kw, ac_kw = 1000 * res.model_losses_mw[0], ac["ac_losses_kw"]
        rows.append(
            f"{name:<34s} {label:<8s} {str(res.open_branches[0]):<20s} {model_kw:9.2f} "
            f"{ac_kw:9.2f} {100 * (model_kw - ac_kw) / ac_kw:10.3f} "
            f"{ac['v_error_max_pu']:11.5f} {res.cut_rounds:6d} {100 * res.gap:7.3f}"
        )
    return rows


def day_rows(scenario, every: int) -> list[str]:
    hours = range(0, scenario.duration_s // scenario.controller_step_s, every)
    rows = []
    for label, cuts in (("initial", NO_REFINEMENT), ("refined", CUTS)):
        res = dso_day_errors(scenario, cuts, hours)
        errors = [abs(r["loss_error_pct"]) for r in res]
        worst = max(res, key=lambda r: abs(r["loss_error_pct"]))
        name = f"DSO day, {len(res)} horizons (worst h {worst['hour']})"
        rows.append(
            f"{name:<34s} {label:<8s} "
            f"{'default':<20s} {1000 * worst['model_loss_mw']:9.2f} "
            f"{1000 * worst['ac_loss_mw']:9.2f} {worst['loss_error_pct']:10.3f} "
            f"{max(r['v_error_max_pu'] for r in res):11.5f} "
            f"{max(r['cut_rounds'] for r in res):6d} {'':>7s}"
        )
        rows.append(f"{'  mean |loss err| %':<34s} {label:<8s} {statistics.mean(errors):.3f}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1, help="check every n-th horizon")
    parser.add_argument("--skip-reconfigure", action="store_true")
    args = parser.parse_args()
    scenario = load_scenario(default_scenario_path())
    print(HEADER)
    if not args.skip_reconfigure:
        for microgrids in (False, True):
            print("\n".join(reconfigure_rows(scenario, microgrids)), flush=True)
    print("\n".join(day_rows(scenario, args.every)))


if __name__ == "__main__":
    main()
