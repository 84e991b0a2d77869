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
* ``admm``: the two-layer ADMM of :mod:`controllers.restoration_admm` (normal and faulted
  sub-networks coordinated on their boundary; storage SOC coupling in the inner loop);
* ``centralised``: the full MILP over the whole network (ties may reconnect cut-off areas).

AC check. Each method's first-period configuration is checked by an AC power flow with the
project's grid model (:class:`sim.grid.GridModel`): switch states of the plan, the faulted
branch out of service, DSO loads picked up (served fraction 1) or shed (0), microgrid loads
at the restored share, wind and PV at the plan's use, turbine and storage at the plan's
dispatch. The grid model switches in one grid-forming source per island without the
substation (the plan's grid former), whose turbine and storage then take the island's
balance; an island its grid former cannot balance collapses.
AC losses are summed over every line (the 37 IEEE branches and the microgrid PCC lines).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mgcosim.controllers.solve import MipLimits
from mgcosim.scenarios.loader import FaultEvent, Scenario, ScenarioError, load_scenario
from mgcosim.sim.argtypes import non_negative_float, positive_int, write_json_report
from mgcosim.sim.mess import placed

if TYPE_CHECKING:  # heavy imports (pandapower, pyomo) stay out of the CLI's start-up
    from mgcosim.controllers.dso import DSOData
    from mgcosim.controllers.restoration_data import RestorationInputs, RestorationResult
    from mgcosim.networks.params import NetworkData

PERIOD_S = 900  # 15-min restoration periods
# Relative MIP gap of both solves. The objective is dominated by the value of the tier-1
# loads (~1.8e5 CNY here): HiGHS' default-like 1e-4 leaves ~20 CNY, more than a tier-3 load
# shed for half an hour is worth, so the two methods would not compare (the centralised
# plan could shed more than the independent one within its tolerance).
MIP_REL_GAP = 1e-6
STUDY_NODE_LIMIT = 5000  # branch-and-bound nodes per solve (a deterministic limit)
TIERS = (1, 2, 3)
SEED_001 = "seed 001 reports <= 35 iterations and 30 % of the centralised time"


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
    from mgcosim.controllers.dso import default_topology
    from mgcosim.controllers.restoration_controller import mess_inputs
    from mgcosim.controllers.restoration_data import MicrogridRestorationInputs, RestorationInputs
    from mgcosim.sim.units import stochastic_units

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
        }
        | {u.name: mess_inputs(u, u.ess_e_init_mwh, n) for u in data.mess},
        dt_h=PERIOD_S / 3600,
    )


# --- AC check -------------------------------------------------------------------------------
def ac_check(scenario: Scenario, fault: FaultEvent, inp: RestorationInputs, res) -> dict:
    """AC power flow (sim.grid.GridModel) of the plan's first period."""
    faults = [{"name": fault.name, "kind": fault.kind, "branch_ieee": fault.branch_ieee}]
    return ac_check_plan(scenario.data, inp, res, faults)


def ac_check_plan(data: NetworkData, inp: RestorationInputs, res, faults: list[dict]) -> dict:
    """AC power flow of the plan's first period with the active ``faults`` (grid-model dicts)."""
    from mgcosim.networks.ieee33 import build_ieee33
    from mgcosim.sim.grid import GridInputs, GridModel

    p = res.periods[0]
    model = GridModel(build_ieee33(data), data)
    load_p = {f"load_b{b}": float(v[0]) for b, v in inp.demand_mw.items()}
    served = {f"load_b{b}": float(b in p.picked_up_buses) for b in inp.demand_mw}
    available, setpoints = {}, {}
    mess = {u.name for u in data.mess}
    for g, mg in inp.microgrids.items():
        if g in mess:  # mobile storage: its storage set-point only
            setpoints[g] = p.storage_p_mw[g]
            continue
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
    out = model.step(
        0,
        PERIOD_S,
        GridInputs(
            load_p_mw=load_p,
            available_p_mw=available,
            setpoints_mw=setpoints,
            setpoints_mvar=dict(p.pv_q_mvar),
            switch_closed={ln: ln in p.closed_branches for ln in inp.initial_closed},
            faults=faults,
            served_fraction=served,
            grid_formers=[g for g in inp.microgrids if g in p.grid_formers],
        ),
    )
    converged = bool(out["converged"])
    vm = [v for v in out["vm_pu"].values() if not math.isnan(v) and v > 0]  # energised buses
    dv = [
        abs(v_model - out["vm_pu"][str(b)])
        for b, v_model in p.vm_pu.items()
        if not math.isnan(out["vm_pu"].get(str(b), math.nan))
    ]
    return {
        "ac_converged": converged,
        "ac_losses_kw": 1000 * out["p_loss_mw"] if converged else None,
        "ac_losses_ieee_kw": 1000 * out["p_loss_ieee_mw"] if converged else None,
        "ac_vmin_pu": min(vm) if converged and vm else None,
        "ac_vmax_pu": max(vm) if converged and vm else None,
        "ac_max_dv_pu": max(dv) if converged and dv else None,  # |V_model - V_ac|
        "model_vmin_pu": min(p.vm_pu.values()) if p.vm_pu else None,
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
def run_admm(dd: DSOData, data: NetworkData, inp: RestorationInputs, max_outer: int):
    """The two-layer ADMM, or None and the reason when the event has nothing to coordinate."""
    from mgcosim.controllers.restoration_admm import (
        RestorationADMMError,
        RestorationADMMSettings,
        solve_restoration_admm,
    )

    try:
        return solve_restoration_admm(
            dd, data, inp, RestorationADMMSettings(max_outer=max_outer)
        ), ""
    except RestorationADMMError as err:
        return None, str(err)


def admm_figures(admm, central: RestorationResult) -> dict:
    """Iterations, convergence, gap and time ratio to the centralised model, residuals."""
    gap = (admm.result.objective_cny - central.objective_cny) / abs(central.objective_cny)
    return {
        "admm_converged": admm.converged,
        "admm_outer_iterations": admm.outer_iterations,
        "admm_inner_iterations": admm.inner_iterations,
        "admm_gap_to_centralised_pct": 100 * gap,
        "admm_time_ratio_to_centralised": admm.solve_time_s / central.solve_time_s,
        "admm_boundary_branches": admm.boundary,
        "admm_radial": admm.radial,
        "admm_radial_problem": admm.radial_problem,
        "admm_voltage_mismatch_pu2": admm.voltage_mismatch_pu2,
        "admm_history": admm.history,
    }


def run_restore(
    scenario: Scenario,
    margin_h: float = 1.0,
    node_limit: int = STUDY_NODE_LIMIT,
    admm_max_outer: int = 60,
) -> dict:
    """Solve the references and the ADMM for the scenario's first fault; the report."""
    from mgcosim.controllers.dso import dso_data
    from mgcosim.controllers.restoration import (
        build_restoration_model,
        solve_independent,
        solve_restoration,
    )
    from mgcosim.controllers.restoration_controller import with_mess_buses
    from mgcosim.networks.ieee33 import build_ieee33

    fault = first_fault(scenario)
    if not margin_h >= 0:
        raise ValueError(f"need margin_h >= 0, got {margin_h}")
    limits = MipLimits(rel_gap=MIP_REL_GAP, node_limit=node_limit)
    dd = with_mess_buses(dso_data(build_ieee33(scenario.data), scenario.data), scenario.data.mess)
    inp = build_inputs(scenario, dd, fault, margin_h)
    independent, parts = solve_independent(dd, scenario.data, inp, limits)
    model = build_restoration_model(dd, scenario.data, inp)
    central = solve_restoration(model, limits)
    admm, admm_skipped = run_admm(dd, scenario.data, inp, admm_max_outer)
    solved = [("independent", independent)]
    solved += [("admm", admm.result)] if admm is not None else []
    solved += [("centralised", central)]
    methods = {}
    for name, res in solved:
        methods[name] = summarise_method(dd, inp, res, ac_check(scenario, fault, inp, res))
    if admm is not None:
        methods["admm"] |= admm_figures(admm, central)
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
        "admm_skipped": admm_skipped,
    }


# --- N-1 sweep ------------------------------------------------------------------------------
# Issue #4 acceptance: a fault on every sectional branch at peak load, each case checked for
# a radial energised network, tier-1 restoration against the proven maximum, and AC voltages.
N1_PERIODS = 4  # short horizon: 1 h in 15-min periods
V_BAND_PU = (0.9, 1.1)  # AC voltage band of the check (reported when left, never enforced)
TOL_MW = 1e-6


def peak_load_step(scenario: Scenario, units: dict) -> int:
    """Physical step of the run where the total day-ahead DSO demand peaks."""
    names = [u for u in units if u.startswith("load_b")]
    total = sum(units[u].base_forecast_mw[: scenario.n_steps] for u in names)
    return int(np.argmax(total))


def n1_wind_mw(scenario: Scenario, wind_pu: float | None) -> tuple[dict[str, float], float | None]:
    """Microgrid wind power of the sweep and the peak-load hour it was read at.

    ``wind_pu`` given: that share of each turbine's rating (hour None). Otherwise the
    scenario's day-ahead (base forecast) wind at the physical step of the DSO peak load.
    """
    if wind_pu is not None:
        return {mg.name: wind_pu * mg.wind_p_rated_mw for mg in scenario.data.microgrids}, None
    from mgcosim.sim.units import stochastic_units

    units = stochastic_units(scenario)
    k = peak_load_step(scenario, units)
    wind = {
        mg.name: float(units[f"{mg.name}_wind"].base_forecast_mw[k])
        for mg in scenario.data.microgrids
    }
    start = scenario.start
    hour = (start.hour + start.minute / 60 + k * scenario.physical_step_s / 3600) % 24
    return wind, hour


def _wind_source(wind_pu: float | None, hour: float | None) -> str:
    if wind_pu is not None:
        return f"{wind_pu:g} pu of rating"
    return f"scenario day-ahead at the DSO peak-load hour {hour:g} h"


def n1_inputs(
    dd: DSOData, data: NetworkData, branch: int, n_periods: int, wind_mw: dict[str, float]
) -> RestorationInputs:
    """Fault on ``branch`` at peak load: DSO demand at nominal (the IEEE 33 base case),
    microgrid loads at peak, the given wind, no PV, storage at its initial SOC, main grid on."""
    from mgcosim.controllers.restoration_data import MicrogridRestorationInputs, nominal_inputs

    inp = nominal_inputs(
        dd, data, n_periods=n_periods, faulted={branch}, main_grid_available=True, pv_pu=0.0
    )
    flat = np.ones(n_periods)
    mgs = {
        g: MicrogridRestorationInputs(
            params=mg.params,
            load_mw=mg.params.load_p_peak_mw * flat,
            wind_mw=wind_mw[g] * flat,
            soc_mwh=mg.params.ess_e_init_mwh,
        )
        for g, mg in inp.microgrids.items()
    }
    return replace(inp, microgrids=mgs)


def tier1_max_model(dd: DSOData, data: NetworkData, inp: RestorationInputs):
    """The centralised model with an objective counting only tier-1 load of period 1 (MW).

    Every constraint of the restoration stays (the whole horizon: storage energy, monotone
    pickup), so its optimum is the most tier-1 load any feasible plan restores in period 1.
    """
    import pyomo.environ as pyo

    from mgcosim.controllers.restoration import build_restoration_model

    m = build_restoration_model(dd, data, inp)
    m.obj.deactivate()
    tier1 = [b for b in m.D if m.tiers[b] == 1]
    m.obj_tier1 = pyo.Objective(expr=-pyo.quicksum(m.load_p[b, 0] * m.x[b, 0] for b in tier1))
    return m


def check_radial(dd: DSOData, period, faulted: int) -> tuple[bool, str]:
    """Every energised component (live branches) is a tree holding exactly one source."""
    from mgcosim.controllers.restoration_data import radial_problem

    why = radial_problem(dd, period, frozenset({faulted}))
    return not why, why


def unreachable_reason(dd: DSOData, inp: RestorationInputs, buses: set[int]) -> str:
    """Why tier-1 buses stay dark: no source reachable, or limits (capacity, voltage)."""
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(dd.buses)
    graph.add_edges_from((b.from_bus, b.to_bus) for b in dd.branches if b.ieee not in inp.faulted)
    sources = {dd.mg_bus[g] for g in inp.microgrids} | (
        {dd.root} if inp.main_grid_available else set()
    )
    dark = sorted(b for b in buses if not nx.node_connected_component(graph, b) & sources)
    limited = sorted(set(buses) - set(dark))
    parts = []
    if dark:
        parts.append(f"no source reachable from buses {dark}")
    if limited:
        parts.append(f"source reachable but capacity/voltage limits at buses {limited}")
    return "; ".join(parts)


def n1_case(
    dd: DSOData,
    data: NetworkData,
    branch: int,
    n_periods: int,
    wind_mw: dict[str, float],
    limits: MipLimits,
) -> dict:
    """One faulted branch: the three solves, the radiality, tier-1 and AC checks."""
    from mgcosim.controllers.dso import default_topology
    from mgcosim.controllers.errors import OptimisationError
    from mgcosim.controllers.restoration import (
        build_restoration_model,
        solve_independent,
        solve_restoration,
    )
    from mgcosim.controllers.restoration_data import subnetworks

    start = time.perf_counter()
    inp = n1_inputs(dd, data, branch, n_periods, wind_mw)
    parts = subnetworks(dd, inp.faulted, default_topology(dd), True)
    cut_off = set().union(*parts[1:]) if len(parts) > 1 else set()
    tier1_cut = sorted(b for b in cut_off if data.tier_of(b) == 1 and b in dd.load_p_nom_mw)
    demand = {b: float(inp.demand_mw[b][0]) for b in tier1_cut}
    row: dict = {
        "branch": branch,
        "cut_off_buses": sorted(cut_off),
        "tier1_cut_off_buses": tier1_cut,
        "tier1_demand_cut_off_mw": sum(demand.values()),
    }
    try:
        central = solve_restoration(build_restoration_model(dd, data, inp), limits)
        independent, _ = solve_independent(dd, data, inp, limits)
        best = solve_restoration(tier1_max_model(dd, data, inp), limits)
    except OptimisationError as err:
        return row | {"error": str(err), "case_time_s": time.perf_counter() - start}
    ties = {b.ieee for b in dd.branches if b.is_tie}
    for name, res in (("centralised", central), ("independent", independent), ("max", best)):
        first = res.periods[0]
        row[f"tier1_restored_{name}_mw"] = sum(
            demand[b] for b in tier1_cut if b in first.picked_up_buses
        )
        row[f"status_{name}"] = res.status
        row[f"solve_time_{name}_s"] = res.solve_time_s
    # the tier-1 objective's best bound: no plan restores more (exact when optimal)
    row["tier1_max_bound_mw"] = -best.best_bound_cny - (
        sum(float(inp.demand_mw[b][0]) for b in dd.load_p_nom_mw if data.tier_of(b) == 1)
        - row["tier1_demand_cut_off_mw"]
    )
    row["tier1_below_max"] = (
        row["tier1_restored_centralised_mw"] < row["tier1_restored_max_mw"] - TOL_MW
    )
    missing = set(tier1_cut) - best.periods[0].picked_up_buses
    row["tier1_max_below_demand"] = bool(missing)
    row["tier1_max_reason"] = unreachable_reason(dd, inp, missing) if missing else ""
    for name, res in (("centralised", central), ("independent", independent)):
        first = res.periods[0]
        shed = sum(first.unserved_mw_by_tier.values()) + sum(first.mg_unserved_mw.values())
        row[f"shed_kw_{name}"] = 1000 * shed
        radial, why = check_radial(dd, first, branch)
        ac = ac_check_plan(
            data, inp, res, [{"name": f"n1_{branch}", "kind": "branch", "branch_ieee": branch}]
        )
        vmin, vmax = ac["ac_vmin_pu"], ac["ac_vmax_pu"]
        out_of_band = (
            not ac["ac_converged"] or vmin is None or vmin < V_BAND_PU[0] or vmax > V_BAND_PU[1]
        )
        row[name] = {
            "radial": radial,
            "radial_problem": why,
            "ties_closed": sorted(first.closed_branches & ties),
            "source_buses": sorted(first.source_buses),
            "islands": sorted(first.source_buses - {dd.root}),
            "energised_buses": sorted(first.energised_buses),
            "ac_voltage_out_of_band": out_of_band,
            "ac_violation": out_of_band or bool(ac["ac_islands_collapsed"]),
        } | ac
    row["case_time_s"] = time.perf_counter() - start
    return row


def run_n1_sweep(
    scenario: Scenario,
    n_periods: int = N1_PERIODS,
    branches: list[int] | None = None,
    node_limit: int = STUDY_NODE_LIMIT,
    wind_pu: float | None = None,
    progress=None,
) -> dict:
    """N-1 sweep over the sectional branches (all of them unless ``branches`` is given)."""
    from mgcosim.controllers.dso import dso_data
    from mgcosim.networks.ieee33 import build_ieee33

    if n_periods < 1:
        raise ValueError(f"need n_periods >= 1, got {n_periods}")
    limits = MipLimits(rel_gap=MIP_REL_GAP, node_limit=node_limit)
    start = time.perf_counter()
    data = scenario.data
    dd = dso_data(build_ieee33(data), data)
    sectional = sorted(b.ieee for b in dd.branches if not b.is_tie)
    chosen = sectional if branches is None else list(branches)
    wrong = sorted(set(chosen) - set(sectional))
    if wrong:
        raise ValueError(f"not sectional IEEE branches: {wrong} (valid: {sectional})")
    wind_mw, hour = n1_wind_mw(scenario, wind_pu)
    rows = []
    for branch in chosen:
        rows.append(n1_case(dd, data, branch, n_periods, wind_mw, limits))
        if progress is not None:
            progress(rows[-1])
    ok = [r for r in rows if "error" not in r]
    totals = {
        "cases": len(rows),
        "errors": [r["branch"] for r in rows if "error" in r],
        "all_tier1_restored": sum(
            r["tier1_restored_centralised_mw"] >= r["tier1_demand_cut_off_mw"] - TOL_MW for r in ok
        ),
        "tier1_max_below_demand": {
            str(r["branch"]): r["tier1_max_reason"] for r in ok if r["tier1_max_below_demand"]
        },
        "tier1_below_max": [r["branch"] for r in ok if r["tier1_below_max"]],
        "not_radial": [
            r["branch"]
            for r in ok
            if not (r["centralised"]["radial"] and r["independent"]["radial"])
        ],
        "ac_violations_centralised": [r["branch"] for r in ok if r["centralised"]["ac_violation"]],
        "ac_violations_independent": [r["branch"] for r in ok if r["independent"]["ac_violation"]],
        "total_time_s": time.perf_counter() - start,
    }
    return {
        "scenario": scenario.name,
        "n_periods": n_periods,
        "dt_h": PERIOD_S / 3600,
        "assumptions": {
            "dso_load_scale": 1.0,
            "mg_load": "peak (load_p_peak_mw)",
            "wind_mw": wind_mw,
            "wind_source": _wind_source(wind_pu, hour),
            "pv_mw": 0.0,
            "soc": "initial (ess_e_init_mwh)",
            "main_grid_available": True,
            "v_band_pu": list(V_BAND_PU),
        },
        "rows": rows,
        "totals": totals,
    }


N1_COLUMNS = (
    ("branch", 6),
    ("cut", 4),
    ("T1 cut", 7),
    ("T1 cen", 7),
    ("T1 ind", 7),
    ("T1 max", 7),
    ("shed cen", 8),
    ("shed ind", 8),
    ("ties", 8),
    ("islands", 12),
    ("Vmin", 6),
    ("Vmax", 6),
    ("collapsed", 9),
    ("radial", 6),
    ("solve s cen/ind/max", 19),
)


def _n1_row(values: list[str]) -> str:
    return "  " + " ".join(f"{v:>{w}s}" for v, (_, w) in zip(values, N1_COLUMNS, strict=True))


def format_n1_row(r: dict) -> str:
    if "error" in r:
        return f"  {r['branch']:>6d}  error: {r['error']}"
    c = r["centralised"]
    kw = lambda mw: _num(1000 * mw)  # noqa: E731
    flag = " !" if r["tier1_below_max"] else ""
    return (
        _n1_row(
            [
                str(r["branch"]),
                str(len(r["cut_off_buses"])),
                kw(r["tier1_demand_cut_off_mw"]),
                kw(r["tier1_restored_centralised_mw"]),
                kw(r["tier1_restored_independent_mw"]),
                kw(r["tier1_restored_max_mw"]),
                _num(r["shed_kw_centralised"]),
                _num(r["shed_kw_independent"]),
                ",".join(map(str, c["ties_closed"])) or "-",
                ",".join(map(str, c["islands"])) or "-",
                _num(c["ac_vmin_pu"], 3) + ("*" if c["ac_voltage_out_of_band"] else ""),
                _num(c["ac_vmax_pu"], 3),
                ",".join(c["ac_islands_collapsed"]) or "none",
                ("yes" if c["radial"] and r["independent"]["radial"] else "NO"),
                f"{r['solve_time_centralised_s']:.2f}/{r['solve_time_independent_s']:.2f}/"
                f"{r['solve_time_max_s']:.2f}",
            ]
        )
        + flag
    )


def n1_header(r: dict) -> str:
    a = r["assumptions"]
    wind = ", ".join(f"{g} {v:.3f}" for g, v in a["wind_mw"].items())
    return "\n".join(
        [
            f"N-1 sweep of {r['scenario']!r}: one fault per sectional branch at peak load, "
            f"{r['n_periods']} periods of {60 * r['dt_h']:g} min, main grid available",
            "  DSO demand at nominal (IEEE 33 base case), microgrid loads at peak, no PV, "
            f"storage at initial SOC, wind MW {wind} ({a['wind_source']})",
            "  T1 = tier-1 DSO load of the cut-off area in period 1 (kW): cut off, restored by "
            "the centralised / independent plan, max = most any feasible plan restores",
            "  shed = DSO + microgrid load shed in period 1 (kW); ties, islands (grid-forming "
            "microgrid buses), radial, AC check: centralised plan (* = outside "
            f"{a['v_band_pu'][0]:g}-{a['v_band_pu'][1]:g} pu); ! = centralised below the max",
            _n1_row([c for c, _ in N1_COLUMNS]),
        ]
    )


def format_n1_totals(r: dict) -> str:
    t = r["totals"]
    lines = [
        f"  cases {t['cases']} (errors: {t['errors'] or 'none'}), all tier-1 restored "
        f"(centralised) in {t['all_tier1_restored']}, centralised below the tier-1 maximum: "
        f"{t['tier1_below_max'] or 'none'}, not radial: {t['not_radial'] or 'none'}",
        f"  AC violations (voltage out of band, no convergence or collapse): centralised "
        f"{t['ac_violations_centralised'] or 'none'}, independent "
        f"{t['ac_violations_independent'] or 'none'}",
        f"  tier-1 max possible < demand in {len(t['tier1_max_below_demand'])} cases"
        + "".join(f"\n    branch {b}: {why}" for b, why in t["tier1_max_below_demand"].items()),
        f"  total time {t['total_time_s']:.1f} s",
    ]
    return "\n".join(lines)


def format_n1(r: dict) -> str:
    return "\n".join([n1_header(r), *(format_n1_row(x) for x in r["rows"]), format_n1_totals(r)])


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
    lines.append(admm_line(r))
    for name, m in r["methods"].items():
        lines.append(
            f"  {name:<12s} period 1: ties closed {m['closed_tie_branches']}, "
            f"sources at buses {m['source_buses_period1']}, "
            f"{len(m['energised_buses_period1'])} of 33 buses energised, "
            f"tier 1 fully restored: {m['tier1_fully_restored']}"
        )
    return "\n".join(lines)


def admm_line(r: dict) -> str:
    m = r["methods"].get("admm")
    if m is None:
        return f"  ADMM not run: {r['admm_skipped']}"
    state = "converged" if m["admm_converged"] else "stopped at the iteration limit"
    return (
        f"  ADMM: {m['admm_outer_iterations']} outer / {m['admm_inner_iterations']} inner "
        f"iterations ({state}), objective {m['admm_gap_to_centralised_pct']:+.3f} % vs "
        f"centralised, time {100 * m['admm_time_ratio_to_centralised']:.0f} % of the "
        f"centralised solve ({SEED_001}); boundary branches {m['admm_boundary_branches']}, "
        f"radial {m['admm_radial']}"
    )


def write_residual_plot(report: dict, path_text: str | None) -> None:
    """The ADMM's primal and dual residuals per iteration (PNG)."""
    m = report["methods"].get("admm")
    if not path_text or m is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = m["admm_history"]
    it = [h["iteration"] for h in hist]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (
        ("primal_residual", "outer primal (boundary P, Q, V, switch)"),
        ("dual_residual", "outer dual"),
        ("inner_primal_residual", "inner primal (storage power, SOC)"),
        ("inner_dual_residual", "inner dual"),
    ):
        ax.semilogy(it, [max(h[key], 1e-8) for h in hist], label=label)
    ax.axhline(1e-3, color="grey", linestyle=":", label="threshold 1e-3")
    ax.set_xlabel("outer iteration")
    ax.set_ylabel("residual (max norm)")
    ax.set_title(f"Restoration ADMM, {report['scenario']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path_text)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"  residual plot {path}")


def cmd_restore(args: argparse.Namespace) -> int:
    from mgcosim.controllers.errors import OptimisationError

    scenario = load_scenario(args.scenario)
    if args.n1:
        return cmd_n1(args, scenario)
    fault = first_fault(scenario)  # refuse before any solve
    if fault.kind == "main_grid":
        if scenario.mess.placement != "none":
            print("note: the seed 003 strategies run without the scenario's mobile storage")
        return cmd_blackout(args, scenario, fault)
    try:
        scenario = placed(scenario)
        report = run_restore(scenario, args.margin_h, args.node_limit, args.admm_max_outer)
    except OptimisationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if scenario.data.mess:
        buses = [u.bus_ieee for u in scenario.data.mess]
        print(f"mobile storage ({scenario.mess.placement} placement) at buses {buses}")
        report["mess_buses"] = buses
    print(format_table(report))
    write_json_report(args.json, report)
    write_residual_plot(report, args.plot)
    return 0


def blackout_event(scenario: Scenario, fault: FaultEvent) -> tuple[int, float, tuple[int, ...]]:
    """Hour, repair window and damaged branches of a main-grid loss (faults at its start)."""
    hour = fault.start_s / 3600
    if abs(hour - round(hour)) > 1e-9:
        raise ScenarioError(
            scenario.path,
            "faults.start_h",
            f"the main-grid loss starts at {hour:g} h; the coordination strategies use hourly "
            "profiles",
            "give start_h as a whole hour",
        )
    damaged = tuple(
        sorted(
            f.branch_ieee
            for f in scenario.faults
            if f.kind == "branch" and f.start_s == fault.start_s and f.branch_ieee is not None
        )
    )
    return int(round(hour)) % 24, fault.repair_s / 3600, damaged


def cmd_blackout(args: argparse.Namespace, scenario: Scenario, fault: FaultEvent) -> int:
    """Main grid lost: the seed 003 strategies (no sharing, central, projection)."""
    from mgcosim.sim.coordinate import CoordinationStudy, print_study

    hour, window_h, damaged = blackout_event(scenario, fault)
    print(
        f"Main grid lost in {scenario.name!r} at {hour} h for {window_h:g} h, damaged branches "
        f"{list(damaged)}: the microgrid coordination strategies of seed 003"
    )
    study = CoordinationStudy(hour=hour, window_h=window_h, faulted=tuple(damaged))
    return print_study(study, args.json)


def cmd_n1(args: argparse.Namespace, scenario: Scenario) -> int:
    header_done = False

    def progress(row: dict) -> None:
        nonlocal header_done
        if not header_done:
            print(n1_header(report_stub), flush=True)
            header_done = True
        print(format_n1_row(row), flush=True)

    wind_mw, hour = n1_wind_mw(scenario, args.wind_pu)
    report_stub = {  # the header before the first case is solved
        "scenario": scenario.name,
        "n_periods": args.periods,
        "dt_h": PERIOD_S / 3600,
        "assumptions": {
            "wind_mw": wind_mw,
            "wind_source": _wind_source(args.wind_pu, hour),
            "v_band_pu": list(V_BAND_PU),
        },
    }
    try:
        report = run_n1_sweep(
            scenario, args.periods, args.branches, args.node_limit, args.wind_pu, progress
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_n1_totals(report))
    write_json_report(args.json, report)
    return 0


def _branch_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of branches"
        ) from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``mgcosim restore`` on the CLI's subparsers."""
    p = sub.add_parser(
        "restore",
        help="restore supply after a scenario's fault: uncoordinated, ADMM-coordinated "
        "and central plans compared",
    )
    p.add_argument("scenario", help="scenario TOML file with at least one [[faults]] table")
    p.add_argument(
        "--margin-h",
        type=non_negative_float,
        default=1.0,
        help="hours after the repair kept in the horizon (default 1)",
    )
    p.add_argument(
        "--node-limit",
        type=positive_int,
        default=STUDY_NODE_LIMIT,
        help=f"branch-and-bound nodes per MILP solve (default {STUDY_NODE_LIMIT}); "
        "a plan stopped there is reported with its gap",
    )
    p.add_argument("--json", help="write the report as JSON to this file")
    p.add_argument("--plot", help="write the ADMM residuals per iteration to this PNG file")
    p.add_argument(
        "--admm-max-outer",
        type=positive_int,
        default=60,
        help="outer ADMM iterations at most (default 60)",
    )
    n1 = p.add_argument_group("N-1 sweep")
    n1.add_argument(
        "--n1",
        action="store_true",
        help="instead of the scenario's fault: a fault on every sectional branch at peak load",
    )
    n1.add_argument(
        "--periods",
        type=positive_int,
        default=N1_PERIODS,
        help=f"15-min periods per N-1 case (default {N1_PERIODS})",
    )
    n1.add_argument(
        "--branches", type=_branch_list, help="N-1: only these IEEE branches, e.g. 1,9,12"
    )
    n1.add_argument(
        "--wind-pu",
        type=non_negative_float,
        help="N-1: wind at this share of the rating (default: the scenario's day-ahead "
        "wind at the DSO peak-load hour)",
    )
    p.set_defaults(func=cmd_restore)
