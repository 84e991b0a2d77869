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

import math
from typing import TYPE_CHECKING

import numpy as np

from mgcosim.controllers.solve import MipLimits
from mgcosim.scenarios.loader import FaultEvent, Scenario, ScenarioError

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
# the restoration ADMM's source document (seed 001) reports these figures
PUBLISHED_ADMM = "the published method: <= 35 iterations, 30 % of the centralised time"


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
    from mgcosim.controllers.restoration import build_restoration_model
    from mgcosim.controllers.restoration_controller import with_mess_buses
    from mgcosim.controllers.restoration_solve import solve_independent, solve_restoration
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
