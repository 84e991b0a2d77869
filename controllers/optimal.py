"""The optimisers as co-simulation controllers: bilevel ADMM, or the centralised model.

Each controller step: the forecasts (physical steps) become hourly horizon inputs
(:mod:`controllers.horizon`); the switch schedule is chosen (:mod:`controllers.planner`);
the coupled problem is solved by the embedded ADMM (warm-started from the previous
horizon's consensus values, duals and penalties, shifted by one period) or centrally;
the first period is applied. When the ADMM is chosen, the centralised model of the same
horizon is solved as well (``reference=True``) and the gap is recorded.

Applied set-points of the first period: turbine ``mt``; storage ``ch - dis`` (the same in
every scenario, non-anticipative); wind cap = the largest wind use over the scenarios, or
no cap when no scenario curtails; PV cap likewise. Deviations of the realised wind and load
from the plan flow through the PCC (settled at the tariff in the run's accounts).

Fallback (documented and recorded, the run never stops): an infeasible or failed solve
raises a named error in the library; here it is caught, logged, and the step is planned by
the rule-based baseline, with ``status`` saying why. An ADMM that reaches its iteration
limit is not used: the centralised solution of the same horizon is applied instead, or,
without the reference, its last iterate (:data:`NOT_CONVERGED_LAST_ITERATE`). With message
faults (``settings.comms``, :mod:`controllers.comms`) a plan missing after its retries
(:class:`CommunicationError`) falls back likewise; the step's ``comm_*`` figures are recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandapower as pp
import pyomo.environ as pyo

from mgcosim.controllers.admm import ADMMSettings, ADMMState, BilevelADMM
from mgcosim.controllers.base import Forecasts, Measurements, Plan
from mgcosim.controllers.comms import CommStats
from mgcosim.controllers.coupled import (
    HorizonInputs,
    build_centralised_model,
    pairs,
    set_centralised_inputs,
)
from mgcosim.controllers.dso import DSOData, default_topology, dso_data
from mgcosim.controllers.errors import (
    CommunicationError,
    InfeasibleError,
    NotConvergedError,
    OptimisationError,
)
from mgcosim.controllers.horizon import horizon_inputs
from mgcosim.controllers.loss_cuts import solve_tight
from mgcosim.controllers.mg_agent import mg_plan
from mgcosim.controllers.plan_check import PlanACCheck, plan_point
from mgcosim.controllers.planner import TopologyPlanner
from mgcosim.controllers.rule_based import RuleBasedController
from mgcosim.controllers.solve import persistent_highs, solve_optimal
from mgcosim.controllers.topology import switch_actions
from mgcosim.networks.params import NetworkData, PVParams

log = logging.getLogger(__name__)
# what makes a controller step fall back to the rule-based plan
STEP_FAILURES = (InfeasibleError, OptimisationError, NotConvergedError, CommunicationError)
# without the centralised reference (always so with agents = "mosaik"), an ADMM at its
# iteration limit applies its last iterate: each microgrid's own plan at that iterate (its
# exchanges may still differ from the DSO's by the primal residual, settled at the PCC)
NOT_CONVERGED_LAST_ITERATE = "admm_not_converged: last iterate applied"


class OptimalController:
    """Rolling-horizon controller running the bilevel ADMM or the centralised model."""

    def __init__(
        self,
        data: NetworkData,
        net: pp.pandapowerNet,
        start_hour: float,
        method: str = "admm",
        n_periods: int = 24,
        period_h: float = 1.0,
        n_scenarios: int = 10,
        plan_steps: int = 4,
        reference: bool = True,
        settings: ADMMSettings | None = None,
    ) -> None:
        if method not in ("admm", "centralised"):
            raise ValueError(f"method must be 'admm' or 'centralised', not {method!r}")
        self.data, self.method, self.start_hour = data, method, start_hour
        self.T, self.period_h, self.S = n_periods, period_h, n_scenarios
        self.dd: DSOData = dso_data(net, data)
        self.plan_ac = PlanACCheck(data)  # one AC net for every plan
        self.planner = TopologyPlanner(self.dd, n_periods, data)
        self.admm = (
            BilevelADMM(self.dd, data, n_periods, n_scenarios, settings, period_h)
            if method == "admm"
            else None
        )
        self.central = None
        if method == "centralised" or reference:
            self.central = build_centralised_model(self.dd, data, n_periods, n_scenarios, period_h)
            self.central_solver = persistent_highs()
        self.fallback = RuleBasedController(data, plan_steps)
        self.warm: ADMMState | None = None
        self.mt_plan: dict[str, np.ndarray] | None = None
        self.switch_history: list[tuple[int, int]] = []  # (time_s, actions)

    # --- one controller step -------------------------------------------------------------
    def plan(self, meas: Measurements, fc: Forecasts) -> Plan:
        t0 = time.perf_counter()
        current = {**default_topology(self.dd), **dict(meas.switch_closed)}
        if self.admm is not None:
            self.admm.comm_stats = CommStats()  # this step's figures only
        try:
            h = self._inputs(meas, fc, current)
            plan = self._solve(h, fc, current)
        except STEP_FAILURES as err:
            log.warning("optimiser failed at t=%s s (%s); rule-based fallback", fc.time_s, err)
            plan = self.fallback.plan(meas, fc)
            plan = replace(
                plan,
                info={
                    **plan.info,
                    "status": f"fallback_rule_based: {err}",
                    "plan_time_s": fc.time_s,
                },
            )
            self.warm = None
        if self.admm is not None and self.admm.comms is not None:
            plan.info.update(self.admm.comm_stats.record())
        self._record_switching(fc.time_s, current, plan)
        plan.info["wall_time_s"] = time.perf_counter() - t0
        return plan

    def _inputs(self, meas: Measurements, fc: Forecasts, current: dict) -> HorizonInputs:
        h = horizon_inputs(
            fc,
            meas,
            self.data,
            self.dd,
            self.start_hour,
            self.period_h,
            self.T,
            [current] * self.T,
            shifted_plan(self.mt_plan),
        )
        budget = self.dd.switch_budget - self._actions_in_window(fc.time_s)
        schedule, self.topology_info = self.planner.schedule(h, self._pm_guess(h), current, budget)
        return replace(h, topology=schedule)

    def _pm_guess(self, h: HorizonInputs) -> dict[str, np.ndarray]:
        """Expected exchanges: the warm consensus values, else expected net demand."""
        names = sorted(h.mg)
        if self.warm is not None:
            return {g: self.warm.z[i] for i, g in enumerate(names)}
        return {g: h.mg[g].load_mw - h.mg[g].prob @ h.mg[g].wind_mw for g in names}

    def _solve(self, h: HorizonInputs, fc: Forecasts, current: dict) -> Plan:
        info: dict = {"controller": self.method, "plan_time_s": fc.time_s, **self.topology_info}
        central_obj = self._solve_central(h, info) if self.central is not None else None
        if self.method == "admm":
            warm = self.warm.shifted(1) if self.warm is not None else None
            res = self.admm.solve(h, warm, fc.time_s)
            info.update(admm_info(res, central_obj))
            if not res.converged and self.central is None:  # no reference: the last iterate
                log.warning("ADMM did not converge at t=%s s; last iterate applied", fc.time_s)
                info["status"] = NOT_CONVERGED_LAST_ITERATE
                self.warm = res.state
                return self._plan_from(self.admm.dso.model, res.mg_plans, h, fc, info)
            if not res.converged:
                log.warning("ADMM did not converge at t=%s s; centralised plan applied", fc.time_s)
                info["status"] = "admm_not_converged: centralised plan applied"
                self.warm = res.state
                return self._plan_from(self.central.dso, self._central_plans(), h, fc, info)
            self.warm = res.state
            info["status"] = "optimal"
            return self._plan_from(self.admm.dso.model, res.mg_plans, h, fc, info)
        info["status"] = "optimal"
        return self._plan_from(self.central.dso, self._central_plans(), h, fc, info)

    def _central_plans(self) -> dict[str, dict]:
        """Each microgrid's plan read from the centralised model."""
        return {
            mg.name: mg_plan(self.central.mg[mg.name], mg, self.T) for mg in self.data.microgrids
        }

    def _solve_central(self, h: HorizonInputs, info: dict) -> float:
        t0 = time.perf_counter()
        set_centralised_inputs(self.central, self.dd, h)
        solve_tight(
            self.central.dso,
            self.dd,
            lambda: solve_optimal(self.central, self.central_solver, "centralised horizon"),
            self.central_solver,
        )
        info["central_time_s"] = time.perf_counter() - t0
        info["central_objective_cny"] = pyo.value(self.central.obj)
        info["central_costs_cny"] = {"DSO": pyo.value(self.central.dso.cost)} | {
            g: pyo.value(self.central.mg[g].cost) for g in self.central.MG
        }
        if self.method == "centralised":
            info["costs_cny"] = info["central_costs_cny"]
            info["objective_cny"] = info["central_objective_cny"]
        return info["central_objective_cny"]

    def _plan_from(
        self, dso_m, mg_plans: dict[str, dict], h: HorizonInputs, fc: Forecasts, info: dict
    ) -> Plan:
        setpoints = unit_setpoints(dso_m, mg_plans, self.data.pv, self.T)
        self.mt_plan = {g: np.array(mg_plans[g]["mt_plan_mw"]) for g in h.mg}
        info.update(predictions(dso_m, mg_plans, self.dd))
        # the model's own error: an AC power flow of the plan's first-period injections
        info["plan_ac"] = self.plan_ac(plan_point(dso_m, self.dd, 0))
        switches = {b: np.array([h.topology[t][b] for t in range(self.T)]) for b in h.topology[0]}
        return Plan(
            time_s=fc.time_s,
            step_h=self.period_h,
            setpoints_mw=setpoints,
            switch_closed=switches,
            info=info,
        )

    # --- switching budget over a sliding window --------------------------------------------
    def _actions_in_window(self, time_s: int) -> int:
        window = self.T * self.period_h * 3600
        return sum(a for t, a in self.switch_history if time_s - t < window)

    def _record_switching(self, time_s: int, current: dict, plan: Plan) -> None:
        applied = plan.switches_at(0)
        if applied:
            self.switch_history.append((time_s, switch_actions(current, applied)))


def shifted_plan(plan: dict[str, np.ndarray] | None) -> dict[str, np.ndarray] | None:
    """The previous horizon's per-period plan moved forward one period (last value held)."""
    if plan is None:
        return None
    return {g: np.r_[values[1:], values[-1:]] for g, values in plan.items()}


def admm_info(res, central_obj: float | None) -> dict:
    """Scalars and the residual history of one ADMM run, for the record."""
    info = {
        "objective_cny": res.objective,
        "converged": bool(res.converged),
        "outer_iterations": res.outer_iterations,
        "inner_iterations": res.inner_iterations,
        "admm_time_s": res.solve_time_s,
        "admm_messages": res.messages,
        "admm_bytes": res.bytes,
        "costs_cny": dict(res.costs),
        "history": res.history,
    }
    if central_obj is not None:
        info["gap_pct"] = 100 * (res.objective - central_obj) / abs(central_obj)
    return info


def unit_setpoints(
    dso_m, mg_plans: dict[str, dict], pv_units: Sequence[PVParams], n_periods: int
) -> dict[str, np.ndarray]:
    """Per-period set-points of every unit: the microgrids' own plans
    (:func:`controllers.mg_agent.mg_plan`) and the DSO's PV caps from its solved model."""
    out: dict[str, np.ndarray] = {}
    for plan in mg_plans.values():
        out |= {unit: np.array(values) for unit, values in plan["setpoints_mw"].items()}
    for pv in pv_units:
        used = np.array([pyo.value(dso_m.pv[pv.name, t]) for t in range(n_periods)])
        avail = np.array([pyo.value(dso_m.pv_avail[pv.name, t]) for t in range(n_periods)])
        out[pv.name] = np.where(avail - used > 1e-6, used, pv.p_rated_mw)
    return out


def predictions(dso_m, mg_plans: dict[str, dict], dd: DSOData) -> dict:
    """What the model expects in the first period, to compare with the AC power flow."""
    r = {b.ieee: b.r_pu for b in dd.branches}
    names = list(mg_plans)
    trades = {f"{a}->{b}": mg_plans[a]["trades_mw"][b] for a, b in pairs(names)}
    return {
        "vm_pu": {str(b): float(np.sqrt(pyo.value(dso_m.v[b, 0]))) for b in dso_m.B},
        "p_loss_mw": float(
            sum(r[ln] * pyo.value(dso_m.lp[ln, 0] + dso_m.lq[ln, 0]) for ln in dso_m.L)
        ),
        "loading_ok": True,
        "exchange_mw": {g: mg_plans[g]["exchange_mw"] for g in names},
        "trades_mw": trades,
        "grid_mw": {g: mg_plans[g]["grid_mw"] for g in names},
        "soc_end_mwh": {f"{g}_ess": mg_plans[g]["soc_end_mwh"] for g in names},
        "open_branches": sorted(
            int(ln) for ln in dso_m.L if pyo.value(dso_m.alpha_fixed[ln, 0]) < 0.5
        ),
    }
