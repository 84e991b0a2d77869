"""Restoration mode of the co-simulation controller: plans with the restoration model.

When a fault is in force the controller re-plans every restoration step (15 min by
default) over a horizon that runs until the last repair plus a margin (capped), with the
latest point forecasts, the measured SOC, turbine output and switch states. The horizon
has two time scales: the first ``fine_h`` hours in restoration steps with every integer
decision, then hourly look-ahead periods (``look_ahead_step_h``) as the linear relaxation,
which keep the energy budget of the whole horizon in view (only the first step is applied
before the next plan; a first plan of 12 steps becomes 4 + 2 periods). The
centralised restoration model of :mod:`controllers.restoration` decides switch actions
(ties included), islands energised by grid-forming microgrids or mobile storage units
(``data.mess``, seed 002: storage at their IEEE bus, in the model's microgrid form without
turbine, wind or load, see :func:`mess_inputs`), load pickup by priority tier, storage and
turbine dispatch and curtailment. Its first step is applied; the grid's
AC power flow (islands included) checks it. A failed solve keeps the current switches and
sheds nothing (the grid then drops whatever islands it cannot carry), recorded in the plan.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import numpy as np
import pandapower as pp
import pyomo.environ as pyo
from pyomo.common.collections import ComponentMap

from mgcosim.controllers.base import Forecasts, Measurements, Plan
from mgcosim.controllers.dso import DSOData, default_topology, dso_data
from mgcosim.controllers.errors import InfeasibleError, OptimisationError
from mgcosim.controllers.restoration import build_restoration_model
from mgcosim.controllers.restoration_check import RestorationACCheck
from mgcosim.controllers.restoration_data import (
    MicrogridRestorationInputs,
    RestorationInputError,
    RestorationInputs,
    RestorationResult,
    in_periods,
)
from mgcosim.controllers.restoration_losses import refine_plan_losses
from mgcosim.controllers.restoration_solve import (
    RESTORATION_LIMITS,
    Decisions,
    extract_result,
    first_step_start,
    plan_decisions,
    shifted_start,
    solve_restoration,
)
from mgcosim.controllers.solve import MipLimits, persistent_highs
from mgcosim.networks.params import MessUnit, MicrogridParams, NetworkData

log = logging.getLogger(__name__)


class RestorationController:
    """Rolling restoration plans while faults are in force."""

    def __init__(
        self,
        data: NetworkData,
        net: pp.pandapowerNet,
        step_h: float = 0.25,
        margin_h: float = 1.0,
        max_periods: int = 16,
        limits: MipLimits = RESTORATION_LIMITS,
        method: str = "centralised",
        fine_h: float | None = 1.0,
        look_ahead_step_h: float = 1.0,
    ) -> None:
        if method not in ("centralised", "admm"):
            raise ValueError(f"restoration method {method!r}: use 'centralised' or 'admm'")
        self.data, self.step_h, self.margin_h = data, step_h, margin_h
        self.max_periods, self.limits = max_periods, limits
        self.method = method
        self.fine_h, self.look_ahead_step_h = fine_h, look_ahead_step_h
        self.dd = with_mess_buses(dso_data(net, data), data.mess)
        self.plan_ac = RestorationACCheck(data)  # one AC net for every plan
        # the last centralised plan: its time, faults in force and decisions (a MIP start)
        self._previous: tuple[int, tuple, Decisions] | None = None

    def horizon(self, time_s: int, faults: tuple[dict, ...]) -> int:
        """Periods until the last repair plus the margin, at most ``max_periods``."""
        end = max(int(f.get("repair_end_s", time_s)) for f in faults)
        periods = math.ceil((end - time_s) / 3600 / self.step_h + self.margin_h / self.step_h)
        return int(min(max(periods, 1), self.max_periods))

    def fine_periods(self, n_steps: int) -> int:
        """Periods of one restoration step with integer decisions: the first ``fine_h``."""
        if self.fine_h is None:
            return n_steps
        return min(n_steps, max(1, round(self.fine_h / self.step_h)))

    def period_steps(self, n_steps: int) -> list[int]:
        """Restoration steps per period: one each for the first ``fine_h`` hours, then
        look-ahead periods of ``look_ahead_step_h`` (the last one shorter if need be);
        every period one step when ``fine_h`` is None."""
        fine = self.fine_periods(n_steps)
        chunk = max(1, round(self.look_ahead_step_h / self.step_h))
        rest = n_steps - fine
        return [1] * fine + [chunk] * (rest // chunk) + ([rest % chunk] if rest % chunk else [])

    def inputs(self, meas: Measurements, fc: Forecasts) -> RestorationInputs:
        n = self.horizon(meas.time_s, meas.active_faults)
        per = max(1, int(round(self.step_h / fc.step_h)))

        def series(unit: str) -> np.ndarray:
            values = np.asarray(fc.p_mw[unit], dtype=float)[: n * per]
            return values.reshape(n, per).mean(axis=1)

        closed = {**default_topology(self.dd), **dict(meas.switch_closed)}
        mgs = {
            mg.name: MicrogridRestorationInputs(
                params=mg,
                load_mw=series(f"{mg.name}_load"),
                wind_mw=series(f"{mg.name}_wind"),
                soc_mwh=float(meas.soc_mwh.get(f"{mg.name}_ess", mg.ess_e_init_mwh)),
                mt_prev_mw=float(meas.mt_p_mw.get(f"{mg.name}_mt", 0.0)),
            )
            for mg in self.data.microgrids
        }
        mgs |= {
            u.name: mess_inputs(u, float(meas.soc_mwh.get(u.name, u.ess_e_init_mwh)), n)
            for u in self.data.mess
        }
        faults = meas.active_faults
        per_step = RestorationInputs(
            n_periods=n,
            faulted=frozenset(int(f["branch_ieee"]) for f in faults if f["kind"] == "branch"),
            main_grid_available=not any(f["kind"] == "main_grid" for f in faults),
            initial_closed=closed,
            demand_mw={bus: series(f"load_b{bus}") for bus in self.dd.load_p_nom_mw},
            pv_mw={pv.name: series(pv.name) for pv in self.data.pv},
            microgrids=mgs,
            dt_h=self.step_h,
        )
        return in_periods(per_step, self.period_steps(n), self.fine_periods(n))

    def plan(self, meas: Measurements, fc: Forecasts) -> Plan:
        t0 = time.perf_counter()
        info = {"controller": "restoration", "mode": "restoration", "plan_time_s": fc.time_s}
        try:
            inp = self.inputs(meas, fc)
            result = self._solve(inp, info, meas.time_s, fault_key(meas.active_faults))
        except (InfeasibleError, OptimisationError, RestorationInputError) as err:
            log.warning("restoration plan failed at t=%s s (%s); switches kept", fc.time_s, err)
            info["status"] = f"restoration_failed: {err}"
            info["wall_time_s"] = time.perf_counter() - t0
            return Plan(
                time_s=fc.time_s, step_h=self.step_h, setpoints_mw=idle(self.data), info=info
            )
        info |= restoration_info(result)
        info["plan_ac"] = self.plan_ac.check(result.periods[0], inp, self.dd)
        info["wall_time_s"] = time.perf_counter() - t0
        return plan_from_result(result, inp, self.data, fc.time_s, self.step_h, info)

    def _solve(
        self, inp: RestorationInputs, info: dict, time_s: int, faults: tuple
    ) -> RestorationResult:
        """The configured planner; the ADMM falls back to the centralised model (recorded)."""
        previous, self._previous = self._previous, None  # kept only when this plan is solved
        if self.method == "admm":
            from mgcosim.controllers.restoration_admm import (
                RestorationADMMError,
                RestorationADMMSettings,
                solve_restoration_admm,
            )

            settings = RestorationADMMSettings(
                mip_rel_gap=min(self.limits.rel_gap, RestorationADMMSettings.mip_rel_gap),
                node_limit=self.limits.node_limit,
            )
            try:
                admm = solve_restoration_admm(self.dd, self.data, inp, settings)
            except (RestorationADMMError, OptimisationError) as err:
                log.warning("restoration ADMM: %s; centralised plan used", err)
                info["admm_fallback"] = str(err)
            else:
                info |= admm_info(admm)
                if admm.converged and admm.radial:
                    return admm.result
                info["admm_fallback"] = "not converged" if admm.radial else admm.radial_problem
                log.warning("restoration ADMM %s; centralised plan used", info["admm_fallback"])
        model = plan_model(self.dd, self.data, inp)
        solver = persistent_highs()  # one load for the start and the plan
        start, start_s = self._start(model, solver, previous, time_s, faults, info)
        result = tight_plan(model, self.dd, self.limits, info, start, start_s, solver)
        self._previous = (time_s, faults, plan_decisions(model))
        return result

    def _start(
        self, model, solver, previous, time_s: int, faults: tuple, info: dict
    ) -> tuple[ComponentMap, float]:
        """The MIP start of a plan and the seconds it took: the ``previous`` centralised
        plan (time, faults, decisions) shifted by the restoration steps since (the same
        faults in force, within its integer periods), else the first-step solve
        (:func:`first_step_start`, by ``solver``); ``info["mip_start"]`` names it."""
        if previous is not None and previous[1] == faults:
            prev_s, _, decisions = previous
            shift, rest = divmod(time_s - prev_s, round(self.step_h * 3600))
            t0 = time.perf_counter()
            start = shifted_start(model, decisions, shift) if shift > 0 and not rest else None
            if start:
                info["mip_start"] = "previous plan"
                return start, time.perf_counter() - t0
        info["mip_start"] = "first step"
        return first_step_start(model, self.limits, solver)


def fault_key(faults: tuple[dict, ...]) -> tuple:
    """The faults in force, comparable between plans."""
    return tuple(sorted((str(f["kind"]), str(f.get("branch_ieee"))) for f in faults))


# The loss estimate of a plan whose losses tight_plan makes exact: 9 tangent points
# (squares of k / 4 of the rating, mirrored) instead of blocks.LOSS_CUT_POINTS' 17. The
# estimate only steers the decisions, and with fewer rows HiGHS's root and its sub-MIPs are
# faster: at the 1e-3 gap (and started solves without RINS/RENS), blackout plans median
# 3.07 -> 0.82 s, max 19.1 -> 5.1 s, mid-day max 1.69 -> 1.14 s, every plan refined
# (benchmarks/bench_restore_plans.py).
PLAN_LOSS_CUT_POINTS = np.array([0.0, 1 / 16, 1 / 4, 9 / 16, 1.0])


def plan_model(dd: DSOData, data: NetworkData, inp: RestorationInputs) -> pyo.ConcreteModel:
    """The co-simulation's restoration MILP: its losses estimated at
    :data:`PLAN_LOSS_CUT_POINTS`, for :func:`tight_plan` to make exact."""
    return build_restoration_model(dd, data, inp, PLAN_LOSS_CUT_POINTS)


def tight_plan(
    model,
    dd: DSOData,
    limits: MipLimits,
    info: dict,
    start: ComponentMap | None = None,
    start_s: float = 0.0,
    solver=None,
) -> RestorationResult:
    """The MILP's plan (from the MIP ``start``, found in ``start_s`` seconds, counted in
    its solve time; by ``solver``, a :func:`persistent_highs` that may hold ``model``
    already), its dispatch re-solved with exact losses
    (:func:`controllers.restoration_losses.refine_plan_losses`). Fallback (logged and
    recorded in ``info["loss_refine"]``): when the MILP's decisions cannot carry the exact
    losses, the MILP's own plan."""
    milp = solve_restoration(model, limits, start, solver)
    milp = dataclasses.replace(milp, solve_time_s=milp.solve_time_s + start_s)
    try:
        record, rounds = refine_plan_losses(model, dd)
    except OptimisationError as err:  # InfeasibleError included
        log.warning("restoration loss refinement failed (%s); the MILP's plan is used", err)
        info["loss_refine"] = f"failed: {err}"
        return milp
    info["loss_refine"] = f"optimal, {rounds} rounds"
    refined = extract_result(model, record)
    return dataclasses.replace(milp, objective_cny=refined.objective_cny, periods=refined.periods)


def with_mess_buses(dd: DSOData, mess: tuple[MessUnit, ...]) -> DSOData:
    """The DSO data with the mobile storage units as restoration sources at their buses."""
    if not mess:
        return dd
    return dataclasses.replace(dd, mg_bus=dd.mg_bus | {u.name: u.bus_ieee for u in mess})


def mess_inputs(unit: MessUnit, soc_mwh: float, n_periods: int) -> MicrogridRestorationInputs:
    """A mobile storage unit in the restoration model's microgrid form: storage at its IEEE
    bus (charge/discharge, SOC, reserve) that may form an island there; no turbine, wind
    or load; exchange within its converter's ratings."""
    p_max = max(unit.ess_p_ch_max_mw, unit.ess_p_dis_max_mw)
    # no turbine, wind, load or PCC line: every figure without a default 0 unless given here
    floats = (f for f in dataclasses.fields(MicrogridParams) if f.type == "float")
    zero = {f.name: 0.0 for f in floats if f.default is dataclasses.MISSING}
    ess = ("ess_p_ch_max_mw", "ess_p_dis_max_mw", "ess_e_min_mwh", "ess_e_max_mwh")
    given = {k: getattr(unit, k) for k in (*ess, "ess_eta_ch", "ess_eta_dis", "gf_vm_pu")}
    limits = dict.fromkeys(("pcc_p_max_mw", "grid_buy_max_mw", "grid_sell_max_mw"), p_max)
    pf = dict.fromkeys(("mt_pf", "wind_pf", "load_pf"), 1.0)
    given |= {"ess_e_init_mwh": soc_mwh, **limits, **pf}
    params = MicrogridParams(name=unit.name, bus_ieee=unit.bus_ieee, **zero | given)
    none = np.zeros(n_periods)
    return MicrogridRestorationInputs(
        params=params, load_mw=none, wind_mw=none, soc_mwh=soc_mwh, q_max_mvar=unit.ess_q_max_mvar
    )


def admm_info(admm) -> dict:
    """Iterations and residual history in the columns of the run's ``admm_history.csv``."""
    return {
        "method": "admm",
        "outer_iterations": admm.outer_iterations,
        "inner_iterations": admm.inner_iterations,
        "admm_converged": int(admm.converged),
        "history": [
            {
                "outer": h["iteration"],
                "inner": h["inner_iterations"],
                "r_outer_mw": h["primal_residual"],
                "s_outer_mw": h["dual_residual"],
                "r_inner_mw": h["inner_primal_residual"],
                "s_inner_mw": h["inner_dual_residual"],
                "objective_cny": h["objective_cny"],
            }
            for h in admm.history
        ],
    }


def idle(data: NetworkData) -> dict[str, np.ndarray]:
    """No dispatch change: turbines off, storage idle, renewables uncapped."""
    out = {f"{mg.name}_{u}": np.zeros(1) for mg in data.microgrids for u in ("mt", "ess")}
    out |= {u.name: np.zeros(1) for u in data.mess}
    out |= {f"{mg.name}_wind": np.full(1, mg.wind_p_rated_mw) for mg in data.microgrids}
    return out | {pv.name: np.full(1, pv.p_rated_mw) for pv in data.pv}


def restoration_info(result: RestorationResult) -> dict:
    first = result.periods[0]
    return {
        "status": "optimal" if result.status == "optimal" else f"restoration_{result.status}",
        "objective_cny": result.objective_cny,
        "mip_gap": result.mip_gap,
        "mip_nodes": result.mip_nodes,
        "restoration_time_s": result.solve_time_s,
        "switch_actions": result.switch_actions,
        "open_branches": sorted(set(range(1, 38)) - set(first.closed_branches)),
        "energised_buses": sorted(first.energised_buses),
        "restored_mw_by_tier": {str(k): v for k, v in first.restored_mw_by_tier.items()},
        "unserved_mw_by_tier": {str(k): v for k, v in first.unserved_mw_by_tier.items()},
        # the first period's model voltages and losses: validation.csv sets them beside AC
        "vm_pu": {str(b): v for b, v in first.vm_pu.items()},
        "p_loss_mw": first.p_loss_mw,
    }


def plan_from_result(
    result: RestorationResult,
    inp: RestorationInputs,
    data: NetworkData,
    time_s: int,
    step_h: float,
    info: dict,
) -> Plan:
    """Set-points, switch states and load pickup per restoration step (a look-ahead period
    of several steps repeats its values)."""
    steps = [max(1, round(h / step_h)) for h in inp.durations_h]
    periods = [p for p, k in zip(result.periods, steps, strict=True) for _ in range(k)]
    inp = per_step_inputs(inp, steps)
    setpoints: dict[str, np.ndarray] = {}
    served: dict[str, np.ndarray] = {}
    for mg in data.microgrids:
        g = mg.name
        setpoints[f"{g}_mt"] = np.array([p.mt_p_mw[g] for p in periods])
        setpoints[f"{g}_ess"] = np.array([p.storage_p_mw[g] for p in periods])
        cut = [p.wind_curtailed_mw[g] for p in periods]
        setpoints[f"{g}_wind"] = cap_mw(inp.microgrids[g].wind_mw, cut, mg.wind_p_rated_mw)
        load = inp.microgrids[g].load_mw
        served[f"{g}_load"] = np.array(
            [p.mg_restored_mw[g] / load[t] if load[t] > 0 else 1.0 for t, p in enumerate(periods)]
        )
    for pv in data.pv:
        cut = [p.pv_curtailed_mw[pv.name] for p in periods]
        setpoints[pv.name] = cap_mw(inp.pv_mw[pv.name], cut, pv.p_rated_mw)
    for unit in data.mess:
        setpoints[unit.name] = np.array([p.storage_p_mw[unit.name] for p in periods])
    for bus in inp.demand_mw:
        served[f"load_b{bus}"] = np.array([float(bus in p.picked_up_buses) for p in periods])
    switches = {b: np.array([b in p.closed_branches for p in periods]) for b in range(1, 38)}
    formers = [p.grid_formers for p in periods]
    q_pv = {pv.name: np.array([p.pv_q_mvar.get(pv.name, 0.0) for p in periods]) for pv in data.pv}
    return Plan(
        time_s=time_s,
        step_h=step_h,
        setpoints_mw=setpoints,
        switch_closed=switches,
        info=info,
        served_fraction=served,
        grid_formers=formers,
        setpoints_mvar=q_pv,
    )


def per_step_inputs(inp: RestorationInputs, steps: list[int]) -> RestorationInputs:
    """``inp``'s forecasts repeated over the steps of each period (only what
    :func:`plan_from_result` reads: the microgrids' load and wind, the PV)."""
    if all(k == 1 for k in steps):
        return inp

    def rep(values) -> np.ndarray:
        return np.repeat(np.asarray(values, dtype=float), steps)

    mgs = {
        g: dataclasses.replace(mg, load_mw=rep(mg.load_mw), wind_mw=rep(mg.wind_mw))
        for g, mg in inp.microgrids.items()
    }
    pv = {p: rep(v) for p, v in inp.pv_mw.items()}
    return dataclasses.replace(inp, microgrids=mgs, pv_mw=pv)


def cap_mw(available_mw, curtailed_mw, rated_mw: float) -> np.ndarray:
    """A renewable unit's cap per step: what it keeps where the plan curtails it, else its
    rating (uncapped)."""
    kept = (
        a - c if c > 1e-6 else rated_mw for a, c in zip(available_mw, curtailed_mw, strict=False)
    )
    return np.array(list(kept))
