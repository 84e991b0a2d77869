"""``mgcosim restore``: the restoration references of a scenario's fault event, compared.

The event. The scenario's first ``[[faults]]`` table: a branch fault (the branch is open,
opened by the protection) or the loss of the main grid, from its start until its repair
plus a margin (``--margin-h``, 1 h by default), in periods of 15 min.

Inputs per period (the mean of the physical steps inside the period): the scenario's
day-ahead (base forecast, no forecast error) DSO demand, PV and microgrid wind and load
(:func:`sim.units.stochastic_units`). The initial topology is the default one (ties open).

Simplification: the storage energy at the fault start is each microgrid's *initial* SOC of
the scenario (``ess_e_init_mwh``), and the turbines start without a ramp constraint from a
previous output. This command looks at the event alone; in the co-simulation the
controller receives the measured SOC at the fault time instead.

Methods (the references of :mod:`controllers.restoration`):

* ``independent``: the sub-networks left by the fault restored without coordination
  (every branch joining two of them held open);
* ``centralised``: the full MILP over the whole network (ties may reconnect cut-off areas).

The ADMM restoration (issue #4) does not exist yet and is not shown.

AC check. The restoration MILP has no losses (LinDistFlow), so each method's first-period
configuration is checked by an AC power flow with the project's grid model
(:class:`sim.grid.GridModel`): switch states of the plan, the faulted branch out of
service, DSO loads picked up (served fraction 1) or shed (0), microgrid loads at the
restored share, wind and PV at the plan's use, turbine and storage at the plan's
dispatch. The grid model switches in one grid-forming source per island without the
substation (the microgrid with the largest capacity), whose turbine and storage then
take the island's balance; an island its grid former cannot balance collapses.
AC losses are summed over every line (the 37 IEEE branches and the microgrid PCC lines).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from scenarios.loader import FaultEvent, Scenario, ScenarioError, load_scenario

if TYPE_CHECKING:  # heavy imports (pandapower, pyomo) stay out of the CLI's start-up
    from controllers.dso import DSOData
    from controllers.restoration import RestorationInputs, RestorationResult

PERIOD_S = 900  # 15-min restoration periods
# Relative MIP gap of both solves. The objective is dominated by the value of the tier-1
# loads (~1.8e5 CNY here): HiGHS' default-like 1e-4 leaves ~20 CNY, more than a tier-3 load
# shed for half an hour is worth, so the two methods would not compare (the centralised
# plan could shed more than the independent one within its tolerance).
MIP_REL_GAP = 1e-6
TIERS = (1, 2, 3)
STILL_TO_COME = (
    "Still to come (issue #4): the ADMM (distributed) restoration row; losses are from the "
    "AC check only (the restoration MILP is lossless)."
)


# --- inputs ---------------------------------------------------------------------------------
def first_fault(scenario: Scenario) -> FaultEvent:
    """The scenario's first fault event; refused (ScenarioError) when there is none."""
    if not scenario.faults:
        raise ScenarioError(
            scenario.path,
            "faults",
            "the scenario has no fault events, so there is nothing to restore",
            "add a [[faults]] table (name, kind, branch, start_h, repair_h), "
            "see scenarios/fault_midday.toml",
        )
    return scenario.faults[0]


def n_periods_of(fault: FaultEvent, margin_h: float) -> int:
    return max(1, math.ceil((fault.repair_s + margin_h * 3600) / PERIOD_S - 1e-9))


def _period_means(values: np.ndarray, start_s: int, step_s: int, n_periods: int) -> np.ndarray:
    """Mean over each 15-min period of a per-physical-step series (wrapping past its end)."""
    out = np.empty(n_periods)
    per = max(1, PERIOD_S // step_s)
    for t in range(n_periods):
        first = (start_s + t * PERIOD_S) // step_s
        out[t] = float(np.mean(values[(first + np.arange(per)) % values.size]))
    return out


def build_inputs(
    scenario: Scenario, dd: DSOData, fault: FaultEvent, margin_h: float
) -> RestorationInputs:
    """The restoration event of ``fault`` with the scenario's day-ahead profiles."""
    from controllers.dso import default_topology
    from controllers.restoration import MicrogridRestorationInputs, RestorationInputs
    from sim.units import stochastic_units

    n = n_periods_of(fault, margin_h)
    units = stochastic_units(scenario)
    step_s = scenario.physical_step_s

    def series(name: str) -> np.ndarray:
        return _period_means(units[name].base_forecast_mw, fault.start_s, step_s, n)

    data = scenario.data
    return RestorationInputs(
        n_periods=n,
        faulted=frozenset({fault.branch_ieee}) if fault.kind == "branch" else frozenset(),
        main_grid_available=fault.kind != "main_grid",
        initial_closed=default_topology(dd),
        demand_mw={bus: series(f"load_b{bus}") for bus in dd.load_p_nom_mw},
        pv_mw={pv.name: series(pv.name) for pv in data.pv},
        microgrids={
            mg.name: MicrogridRestorationInputs(
                params=mg,
                load_mw=series(f"{mg.name}_load"),
                wind_mw=series(f"{mg.name}_wind"),
                soc_mwh=mg.ess_e_init_mwh,  # simplification: initial SOC (module docstring)
            )
            for mg in data.microgrids
        },
        dt_h=PERIOD_S / 3600,
    )


# --- AC check -------------------------------------------------------------------------------
def ac_check(scenario: Scenario, fault: FaultEvent, inp: RestorationInputs, res) -> dict:
    """AC power flow (sim.grid.GridModel) of the plan's first period."""
    from networks.ieee33 import build_ieee33
    from sim.grid import GridInputs, GridModel

    data, p = scenario.data, res.periods[0]
    model = GridModel(build_ieee33(data), data)
    load_p = {f"load_b{b}": float(v[0]) for b, v in inp.demand_mw.items()}
    served = {f"load_b{b}": float(b in p.picked_up_buses) for b in inp.demand_mw}
    available, setpoints = {}, {}
    for g, mg in inp.microgrids.items():
        total = float(mg.load_mw[0])
        load_p[f"{g}_load"] = total
        served[f"{g}_load"] = p.mg_restored_mw[g] / total if total > 0 else 1.0
        available[f"{g}_wind"] = float(mg.wind_mw[0])
        setpoints[f"{g}_wind"] = max(0.0, float(mg.wind_mw[0]) - p.wind_curtailed_mw[g])
        setpoints[f"{g}_mt"] = p.mt_p_mw[g]
        setpoints[f"{g}_ess"] = p.storage_p_mw[g]
    for name, v in inp.pv_mw.items():
        available[name] = float(v[0])
        setpoints[name] = max(0.0, float(v[0]) - p.pv_curtailed_mw.get(name, 0.0))
    faults = [{"name": fault.name, "kind": fault.kind, "branch_ieee": fault.branch_ieee}]
    out = model.step(
        0,
        PERIOD_S,
        GridInputs(
            load_p_mw=load_p,
            available_p_mw=available,
            setpoints_mw=setpoints,
            switch_closed={ln: ln in p.closed_branches for ln in inp.initial_closed},
            faults=faults,
            served_fraction=served,
        ),
    )
    converged = bool(out["converged"])
    vm = [v for v in out["vm_pu"].values() if not math.isnan(v)]
    return {
        "ac_converged": converged,
        "ac_losses_kw": 1000 * out["p_loss_mw"] if converged else None,
        "ac_losses_ieee_kw": 1000 * out["p_loss_ieee_mw"] if converged else None,
        "ac_vmin_pu": min(vm) if converged and vm else None,
        "ac_islands": list(out["islands"]),
        "ac_islands_collapsed": list(out["islands_collapsed"]),
        "ac_load_served_kw": 1000 * out["load_served_mw"] if converged else None,
        "ac_load_unserved_kw": 1000 * out["load_unserved_mw"] if converged else None,
    }


# --- figures of one method ------------------------------------------------------------------
def summarise_method(dd: DSOData, inp: RestorationInputs, res: RestorationResult, ac: dict) -> dict:
    dt_kwh = inp.dt_h * 1000  # MW over one period -> kWh
    by_tier = {tier: 0.0 for tier in TIERS}
    mg_shed = wind_used = pv_used = curtailed = 0.0
    for t, p in enumerate(res.periods):
        for tier, mw in p.unserved_mw_by_tier.items():
            by_tier[tier] = by_tier.get(tier, 0.0) + mw * dt_kwh
        mg_shed += sum(p.mg_unserved_mw.values()) * dt_kwh
        for g, mg in inp.microgrids.items():
            cut = max(0.0, p.wind_curtailed_mw[g])
            wind_used += (float(mg.wind_mw[t]) - cut) * dt_kwh
            curtailed += cut * dt_kwh
        for name, v in inp.pv_mw.items():
            cut = max(0.0, p.pv_curtailed_mw.get(name, float(v[t])))  # not modelled: all cut
            pv_used += (float(v[t]) - cut) * dt_kwh
            curtailed += cut * dt_kwh
    ties = {b.ieee for b in dd.branches if b.is_tie}
    first = res.periods[0]
    dso_shed = sum(by_tier.values())
    return {
        "shed_kwh_by_tier": {str(k): v for k, v in sorted(by_tier.items())},
        "shed_kwh_dso": dso_shed,
        "shed_kwh_mg": mg_shed,
        "shed_kwh_total": dso_shed + mg_shed,
        "tier1_fully_restored": by_tier.get(1, 0.0) < 1e-6,
        "renewable_kwh": wind_used + pv_used,
        "wind_kwh": wind_used,
        "pv_kwh": pv_used,
        "curtailed_kwh": curtailed,
        "switch_actions": res.switch_actions,
        "solve_time_s": res.solve_time_s,
        "status": res.status,
        "mip_gap": res.mip_gap,
        "objective_cny": res.objective_cny,
        "energised_buses_period1": sorted(first.energised_buses),
        "source_buses_period1": sorted(first.source_buses),
        "closed_tie_branches": sorted(first.closed_branches & ties),
        "closed_tie_branches_any_period": sorted(
            set().union(*(p.closed_branches for p in res.periods)) & ties
        ),
    } | ac


# --- the run --------------------------------------------------------------------------------
def run_restore(scenario: Scenario, margin_h: float = 1.0, time_limit_s: float = 60.0) -> dict:
    """Solve both references for the scenario's first fault and return the report."""
    from controllers.dso import dso_data
    from controllers.restoration import (
        build_restoration_model,
        solve_independent,
        solve_restoration,
    )
    from networks.ieee33 import build_ieee33

    fault = first_fault(scenario)
    if not margin_h >= 0 or not time_limit_s > 0:
        raise ValueError(f"need margin_h >= 0 and time_limit_s > 0, got {margin_h}, {time_limit_s}")
    dd = dso_data(build_ieee33(scenario.data), scenario.data)
    inp = build_inputs(scenario, dd, fault, margin_h)
    independent, parts = solve_independent(dd, scenario.data, inp, time_limit_s, MIP_REL_GAP)
    model = build_restoration_model(dd, scenario.data, inp)
    central = solve_restoration(model, time_limit_s, MIP_REL_GAP)
    methods = {}
    for name, res in (("independent", independent), ("centralised", central)):
        methods[name] = summarise_method(dd, inp, res, ac_check(scenario, fault, inp, res))
    return {
        "scenario": scenario.name,
        "fault": {
            "name": fault.name,
            "kind": fault.kind,
            "branch_ieee": fault.branch_ieee,
            "start_h": fault.start_s / 3600,
            "repair_h": fault.repair_s / 3600,
        },
        "margin_h": margin_h,
        "n_periods": inp.n_periods,
        "dt_h": inp.dt_h,
        "initial_soc_mwh": {g: mg.soc_mwh for g, mg in inp.microgrids.items()},
        "subnetworks": [sorted(p) for p in parts],
        "methods": methods,
        "still_to_come": STILL_TO_COME,
    }


# --- command line ---------------------------------------------------------------------------
def _num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value + 0.0:.{digits}f}".replace("-0.0", "0.0")


COLUMNS = (
    ("method", 12),
    ("shed T1", 8),
    ("T2", 8),
    ("T3", 8),
    ("MG", 8),
    ("total", 8),
    ("RE used", 8),
    ("curtail", 8),
    ("switch", 6),
    ("solve s", 7),
    ("status (gap)", 20),
    ("AC loss kW", 10),
    ("AC Vmin", 7),
    ("collapsed", 9),
)


def _row(values: list[str]) -> str:
    first, *rest = zip(values, COLUMNS, strict=True)
    return f"  {first[0]:<{first[1][1]}s}" + "".join(f" {v:>{c[1]}s}" for v, c in rest)


def format_table(r: dict) -> str:
    f = r["fault"]
    what = f"branch {f['branch_ieee']}" if f["kind"] == "branch" else "main grid"
    lines = [
        f"Restoration of {r['scenario']!r}: fault {f['name']!r} ({what}) at "
        f"{f['start_h']:g} h, repaired after {f['repair_h']:g} h; {r['n_periods']} periods of "
        f"{60 * r['dt_h']:g} min (margin {r['margin_h']:g} h)",
        "  day-ahead demand/PV/wind; storage at the scenario's initial SOC "
        + ", ".join(f"{g} {v:g} MWh" for g, v in r["initial_soc_mwh"].items())
        + " (the co-simulation uses the measured SOC)",
        "  energy in kWh over the horizon; shed by DSO tier, MG = microgrid loads; "
        "AC check of period 1",
        _row([c for c, _ in COLUMNS]),
    ]
    for name, m in r["methods"].items():
        tiers = m["shed_kwh_by_tier"]
        collapsed = m["ac_islands_collapsed"]
        lines.append(
            _row(
                [
                    name,
                    *(_num(tiers[str(k)]) for k in TIERS),
                    _num(m["shed_kwh_mg"]),
                    _num(m["shed_kwh_total"]),
                    _num(m["renewable_kwh"]),
                    _num(m["curtailed_kwh"]),
                    str(m["switch_actions"]),
                    f"{m['solve_time_s']:.2f}",
                    f"{m['status']} ({100 * max(m['mip_gap'], 0.0):.3f} %)",
                    _num(m["ac_losses_kw"]) if m["ac_converged"] else "no conv.",
                    _num(m["ac_vmin_pu"], 4),
                    ",".join(collapsed) if collapsed else "none",
                ]
            )
        )
    lines.append(f"  {r['still_to_come']}")
    for name, m in r["methods"].items():
        lines.append(
            f"  {name:<12s} period 1: ties closed {m['closed_tie_branches']}, "
            f"sources at buses {m['source_buses_period1']}, "
            f"{len(m['energised_buses_period1'])} of 33 buses energised, "
            f"tier 1 fully restored: {m['tier1_fully_restored']}"
        )
    return "\n".join(lines)


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number of hours >= 0")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds > 0")
    return value


def cmd_restore(args: argparse.Namespace) -> int:
    from controllers.errors import OptimisationError

    scenario = load_scenario(args.scenario)
    first_fault(scenario)  # refuse before any solve
    try:
        report = run_restore(scenario, args.margin_h, args.time_limit)
    except OptimisationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(format_table(report))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2))
        print(f"  JSON {path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``mgcosim restore`` on the CLI's subparsers."""
    p = sub.add_parser(
        "restore", help="restoration of a scenario's fault: independent vs centralised"
    )
    p.add_argument("scenario", help="scenario TOML file with at least one [[faults]] table")
    p.add_argument(
        "--margin-h",
        type=_non_negative,
        default=1.0,
        help="hours after the repair kept in the horizon (default 1)",
    )
    p.add_argument(
        "--time-limit", type=_positive, default=60.0, help="seconds per MILP solve (default 60)"
    )
    p.add_argument("--json", help="write the report as JSON to this file")
    p.set_defaults(func=cmd_restore)
