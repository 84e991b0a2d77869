"""``mgcosim reconfigure``: the DSO's loss-minimising reconfiguration alone, checked by AC.

Cases
-----
* Snapshot (``--periods 1``, the default): every load at its nominal value (load scale 1.0,
  the IEEE 33 base case of Baran & Wu), PV and wind at the day-ahead shapes of the scenario's
  start hour (no PV at the default 00:00 start). Switching is free and unlimited: the
  classic loss-minimising reconfiguration from the default topology.
* Multi-period (``--periods N``, N > 1): N hourly periods from the scenario start; DSO
  loads = nominal x the scenario's day-ahead ``load_pu`` shape, PV = rating x its shape;
  the scenario's switching budget and cost per action, counted from the default topology.

Microgrids. Their dispatch is not optimised here. With microgrids (default) each microgrid
imports, at its PCC, its own load minus its wind at the day-ahead shapes of that hour
(load = peak x shape, or x 1.0 in the snapshot; wind = rating x shape, fully used), with the
micro turbine and the storage idle; the reactive import is the load's minus the wind's
(at their power factors). This "passive microgrid" is the exchange the DSO sees when the
microgrids do nothing beyond using their wind, a neutral reference for the DSO alone.
Without microgrids (``--no-microgrids``) the exchanges are 0 and the microgrid loads and
units are set to zero in the AC check. Unit-specific shape columns (``MG1_load_pu``,
``PV_b18_pu`` ...) are honoured for microgrids and PV; DSO loads use the common ``load_pu``.

The AC check runs pandapower's Newton-Raphson power flow of the chosen topology at the
first period's inputs (loads, PV, microgrid units as above); AC losses are summed over the
37 IEEE branches (the short PCC lines are not part of the DSO model).

Methods: ``milp`` solves the binary multi-period MILP (:func:`solve_reconfiguration`, to a
proven gap of 1e-4 or a node limit, its loss cuts refined until the DistFlow cone holds);
``candidates`` the time decomposition (:func:`plan_by_candidates`); ``both`` runs the two
and keeps the cheaper, reporting the candidates' gap to the MILP's best bound.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mgcosim.scenarios.loader import Scenario, default_scenario_path, load_scenario
from mgcosim.sim.argtypes import positive_int, write_json_report

if TYPE_CHECKING:  # heavy imports (pandapower, pyomo) stay out of the CLI's start-up
    from mgcosim.controllers.topology import ReconfigResult
    from mgcosim.networks.params import NetworkData

METHODS = ("milp", "candidates", "both")


@dataclass(frozen=True)
class Case:
    """Inputs of the DSO per period (arrays of length ``periods``)."""

    load_scale: np.ndarray
    pv_mw: dict[str, np.ndarray]
    mg_load_mw: dict[str, np.ndarray]
    mg_load_mvar: dict[str, np.ndarray]
    mg_wind_mw: dict[str, np.ndarray]
    mg_wind_mvar: dict[str, np.ndarray]

    @property
    def pm_mw(self) -> dict[str, np.ndarray]:
        """Microgrid PCC import (MW): load minus wind."""
        return {g: self.mg_load_mw[g] - self.mg_wind_mw[g] for g in self.mg_load_mw}

    @property
    def mg_q_mvar(self) -> dict[str, np.ndarray]:
        return {g: self.mg_load_mvar[g] - self.mg_wind_mvar[g] for g in self.mg_load_mvar}


# --- inputs ---------------------------------------------------------------------------------
def _start_h(scenario: Scenario) -> float:
    s = scenario.start
    return s.hour + s.minute / 60 + s.second / 3600


def _hourly(scenario: Scenario, unit: str, generic: str, n: int) -> np.ndarray:
    return scenario.profiles.shape_pu(unit, generic, _start_h(scenario), 1.0, n)


def build_case(scenario: Scenario, periods: int, microgrids: bool) -> Case:
    """The DSO inputs of the snapshot (``periods`` 1) or of ``periods`` hourly periods."""
    from mgcosim.networks.ieee33 import q_of

    snapshot = periods == 1
    ones = np.ones(periods)

    def load_shape(unit: str) -> np.ndarray:
        return ones if snapshot else _hourly(scenario, unit, "load_pu", periods)

    data, zero = scenario.data, np.zeros(periods)
    mg_load, mg_load_q, wind, wind_q = {}, {}, {}, {}
    for mg in data.microgrids:
        p_load = mg.load_p_peak_mw * load_shape(f"{mg.name}_load") if microgrids else zero
        p_wind = (
            mg.wind_p_rated_mw * _hourly(scenario, f"{mg.name}_wind", "wind_pu", periods)
            if microgrids
            else zero
        )
        mg_load[mg.name], wind[mg.name] = p_load, p_wind
        mg_load_q[mg.name] = np.array([q_of(p, mg.load_pf) for p in p_load])
        wind_q[mg.name] = np.array([q_of(p, mg.wind_pf) for p in p_wind])
    pv = {u.name: u.p_rated_mw * _hourly(scenario, u.name, "pv_pu", periods) for u in data.pv}
    return Case(load_shape("load"), pv, mg_load, mg_load_q, wind, wind_q)


# --- AC check -------------------------------------------------------------------------------
def ac_check(
    data: NetworkData,
    closed: dict[int, bool],
    case: Case,
    v_model: dict[int, float] | None = None,
    t: int = 0,
) -> dict:
    """pandapower AC power flow of topology ``closed`` at period ``t`` of ``case``."""
    from mgcosim.networks.ieee33 import build_ieee33
    from mgcosim.networks.powerflow import run_power_flow
    from mgcosim.networks.topology import energised_buses, is_radial, switch_of_branch

    net = build_ieee33(data)
    for branch, on in closed.items():
        net.switch.at[switch_of_branch(net, branch), "closed"] = bool(on)
    _set_ac_inputs(net, case, t)
    out = {
        "radial": bool(is_radial(net)),
        "all_buses_energised": set(net.bus.index) <= energised_buses(net),
    }
    if not run_power_flow(net):
        return out | {"ac_converged": False, "ac_losses_kw": None, "ac_vmin_pu": None}
    ieee = net.bus["ieee"] > 0
    vm = net.res_bus.vm_pu[ieee].set_axis(net.bus.ieee[ieee].astype(int))
    out |= {
        "ac_converged": True,
        "ac_losses_kw": float(net.res_line.pl_mw[net.line.ieee > 0].sum() * 1000),
        "ac_vmin_pu": float(vm.min()),
        "ac_vmin_bus": int(vm.idxmin()),
    }
    if v_model is not None:
        out["v_error_max_pu"] = float(max(abs(vm[b] - v) for b, v in v_model.items()))
    return out


def _set_ac_inputs(net, case: Case, t: int) -> None:
    loads, sgen = net.load, net.sgen
    dso_loads = loads.name.str.startswith("load_b")
    loads.loc[dso_loads, "p_mw"] = loads.p_nom_mw[dso_loads] * case.load_scale[t]
    loads.loc[dso_loads, "q_mvar"] = loads.q_nom_mvar[dso_loads] * case.load_scale[t]
    by_name = {name: i for i, name in loads.name.items()}
    for g in case.mg_load_mw:
        loads.at[by_name[f"{g}_load"], "p_mw"] = case.mg_load_mw[g][t]
        loads.at[by_name[f"{g}_load"], "q_mvar"] = case.mg_load_mvar[g][t]
    sgen_at = {name: i for i, name in sgen.name.items()}
    for name, p in case.pv_mw.items():
        sgen.loc[sgen_at[name], ["p_mw", "q_mvar"]] = (p[t], 0.0)
    for g in case.mg_wind_mw:
        sgen.loc[sgen_at[f"{g}_wind"], ["p_mw", "q_mvar"]] = (
            case.mg_wind_mw[g][t],
            case.mg_wind_mvar[g][t],
        )
        sgen.loc[sgen_at[f"{g}_mt"], ["p_mw", "q_mvar"]] = (0.0, 0.0)
    net.storage["p_mw"] = 0.0


# --- the run --------------------------------------------------------------------------------
def run_reconfigure(
    scenario: Scenario,
    periods: int = 1,
    microgrids: bool = True,
    method: str = "milp",
    node_limit: int | None = None,
) -> dict:
    """Solve the case, check it by AC power flow and return the report (JSON-ready)."""
    from mgcosim.controllers.dso import default_topology, dso_data
    from mgcosim.controllers.solve import MipLimits
    from mgcosim.controllers.topology import (
        RECONFIG_LIMITS,
        plan_by_candidates,
        solve_reconfiguration,
    )
    from mgcosim.networks.ieee33 import build_ieee33

    if periods < 1 or method not in METHODS:
        raise ValueError(f"need periods >= 1 and method in {METHODS}, got {periods}, {method!r}")
    limits = RECONFIG_LIMITS
    if node_limit is not None:
        limits = MipLimits(rel_gap=limits.rel_gap, node_limit=node_limit)
    case = build_case(scenario, periods, microgrids)
    dd = dso_data(build_ieee33(scenario.data), scenario.data)
    budget = dd.switch_budget
    if periods == 1:  # snapshot: free, unlimited switching
        dd, budget = dataclasses.replace(dd, switch_cost=0.0), 2 * len(dd.branches)
    args = (dd, case.load_scale, case.pm_mw, case.pv_mw, default_topology(dd), budget)
    results: dict[str, ReconfigResult] = {}
    if method in ("milp", "both"):
        results["milp"] = solve_reconfiguration(*args, limits=limits, mg_q_mvar=case.mg_q_mvar)
    if method in ("candidates", "both"):
        results["candidates"] = plan_by_candidates(*args, mg_q_mvar=case.mg_q_mvar, limits=limits)
    chosen = min(results, key=lambda k: results[k].objective)
    res = results[chosen]
    report = _report(scenario, periods, microgrids, dd, budget, case, chosen, res, results)
    return report | ac_check(scenario.data, res.closed[0], case, res.v_pu[0])


def _report(
    scenario: Scenario,
    periods: int,
    microgrids: bool,
    dd,
    budget: int,
    case: Case,
    chosen: str,
    res: ReconfigResult,
    results: dict,
) -> dict:
    report = {
        "scenario": scenario.name,
        "periods": periods,
        "microgrids": microgrids,
        "method": chosen,
        "open_branches": res.open_branches[0],
        "objective": res.objective,
        "best_bound": res.best_bound,
        "gap": res.gap,
        "status": res.status,
        "solve_time_s": sum(r.solve_time_s for r in results.values()),
        "model_losses_kw": 1000 * res.model_losses_mw[0],
        "model_vmin_pu": min(res.v_pu[0].values()),
        "cut_rounds": res.cut_rounds,
        "cone_violation": res.cone_violation,
        "switch_actions": res.switch_actions,
        "switch_budget": budget,
        "switch_cost_cny_per_action": dd.switch_cost,
        "load_scale": [float(x) for x in case.load_scale],
        "microgrid_import_mw": {g: [float(x) for x in p] for g, p in case.pm_mw.items()},
    }
    if periods > 1:
        report["open_branches_by_period"] = res.open_branches
        report["model_losses_kw_by_period"] = [1000 * x for x in res.model_losses_mw]
    if len(results) > 1:
        report["methods"] = {k: _method_summary(r, results) for k, r in results.items()}
    return report


def _method_summary(res: ReconfigResult, results: dict) -> dict:
    bound = results["milp"].best_bound if "milp" in results else None
    return {
        "objective": res.objective,
        "status": res.status,
        "solve_time_s": res.solve_time_s,
        "open_branches_by_period": res.open_branches,
        "switch_actions": res.switch_actions,
        "gap_to_milp_bound": None
        if bound is None
        else (res.objective - bound) / max(abs(res.objective), 1e-9),
    }


# --- command line ---------------------------------------------------------------------------
def _fmt(value: object, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _gap(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * max(value, 0.0):.3f} %"


def print_summary(r: dict) -> None:
    """A readable summary of :func:`run_reconfigure`'s report."""
    mg = "with microgrids (passive: load - wind)" if r["microgrids"] else "without microgrids"
    lines = [
        f"Reconfiguration of {r['scenario']!r}: {r['periods']} period(s), {mg}",
        f"  method / status      {r['method']} / {r['status']} "
        f"(solve time {r['solve_time_s']:.2f} s)",
        f"  open branches        {r['open_branches']}",
        f"  objective            {_fmt(r['objective'], 2)} CNY (best bound "
        f"{_fmt(r['best_bound'], 2)}, gap {_gap(r['gap'])})",
        f"  loss cuts            {r['cut_rounds']} refinement round(s), cone held within "
        f"{100 * r['cone_violation']:.3f} %",
        f"  switching            {r['switch_actions']} actions (budget {r['switch_budget']}, "
        f"{r['switch_cost_cny_per_action']:g} CNY each)",
        f"  losses, period 1     model {_fmt(r['model_losses_kw'], 2)} kW, "
        f"AC {_fmt(r['ac_losses_kw'], 2)} kW",
        f"  min voltage          model {_fmt(r['model_vmin_pu'])} pu, "
        f"AC {_fmt(r['ac_vmin_pu'])} pu (bus {r.get('ac_vmin_bus', 'n/a')})",
        f"  radial / energised   {r['radial']} / {r['all_buses_energised']}",
    ]
    for t, branches in enumerate(r.get("open_branches_by_period", [])):
        lines.append(f"  period {t + 1:<3d} open     {branches}")
    for name, m in r.get("methods", {}).items():
        lines.append(
            f"  {name:<20s} {_fmt(m['objective'], 2)} CNY, {m['solve_time_s']:.2f} s, "
            f"gap to MILP bound {_gap(m['gap_to_milp_bound'])}"
        )
    print("\n".join(lines))


def cmd_reconfigure(args: argparse.Namespace) -> int:
    from mgcosim.controllers.errors import OptimisationError

    scenario = load_scenario(args.scenario or default_scenario_path())
    try:
        report = run_reconfigure(
            scenario, args.periods, not args.no_microgrids, args.method, args.node_limit
        )
    except OptimisationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print_summary(report)
    write_json_report(args.json, report)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``mgcosim reconfigure`` on the CLI's subparsers."""
    p = sub.add_parser(
        "reconfigure",
        help="open and close the feeder's switches to minimise losses, checked by AC power flow",
        description="The DSO's loss-minimising switching alone (no co-simulation), each "
        "topology checked by an AC power flow.",
    )
    p.add_argument("scenario", nargs="?", help="scenario TOML file (default: the base day)")
    p.add_argument(
        "--no-microgrids",
        action="store_true",
        help="microgrid exchanges 0 (default: each imports its load minus its wind)",
    )
    p.add_argument(
        "--periods",
        type=positive_int,
        default=1,
        help="1: snapshot at nominal load (default); N: N hourly periods",
    )
    p.add_argument(
        "--method",
        choices=METHODS,
        default="milp",
        help="multi-period MILP (default), candidate topologies + dynamic programming, or both",
    )
    p.add_argument(
        "--node-limit",
        type=positive_int,
        help="branch-and-bound nodes per MILP solve (default 10000); a solve stopped there "
        "reports status node_limit with its gap",
    )
    p.add_argument("--json", help="write the report as JSON to this file")
    p.set_defaults(func=cmd_reconfigure)
