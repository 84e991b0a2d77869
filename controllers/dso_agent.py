"""The DSO's controller in agent mode: the bilevel ADMM's coordinator, talking to microgrid
agents elsewhere (mosaik entities, :mod:`sim.agent_sim`) through messages only.

It holds the DSO's model and data (:class:`controllers.dso.DSOData`: the network, its loads
and PV, the microgrids' PCC buses and limits) and a view of the network data without any
microgrid (no :class:`networks.params.MicrogridParams`). One controller step is a generator
(:meth:`AgentDSOController.plan_exchange`) that yields batches of messages, one per
microgrid, and returns the :class:`controllers.base.Plan`:

1. ``"horizon"``: each microgrid sets up its own horizon and answers its expected exchange
   and reactive import (the DSO's inputs);
2. the switch planner (DSO only), then the ADMM (:meth:`controllers.admm.ADMMCoordinator.run`),
   ending with each microgrid's own plan;
3. on a failed solve or a plan lost to message faults (named error, as in
   :mod:`controllers.optimal`; :mod:`controllers.comms`): ``"fallback"``, each
   microgrid's rule-based set-points, status ``fallback_rule_based: ...``. An ADMM at its
   iteration limit applies its last iterate
   (:data:`controllers.optimal.NOT_CONVERGED_LAST_ITERATE`).

The results are those of :class:`controllers.optimal.OptimalController` with the same
ADMM and ``reference=False`` (the same arithmetic on the same numbers).
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import pandapower as pp

from mgcosim.controllers.admm import ADMMCoordinator, ADMMSettings
from mgcosim.controllers.admm_messages import Exchange, Requests, raise_if_error
from mgcosim.controllers.base import Forecasts, Measurements, Plan
from mgcosim.controllers.comms import CommStats
from mgcosim.controllers.coupled import HorizonInputs
from mgcosim.controllers.dso import default_topology, dso_data
from mgcosim.controllers.horizon import horizon_inputs
from mgcosim.controllers.optimal import (
    NOT_CONVERGED_LAST_ITERATE,
    STEP_FAILURES,
    OptimalController,
    admm_info,
)
from mgcosim.controllers.plan_check import PlanACCheck
from mgcosim.controllers.planner import TopologyPlanner
from mgcosim.networks.params import NetworkData

log = logging.getLogger(__name__)


def dso_view(data: NetworkData) -> NetworkData:
    """The network data without the microgrids: what the DSO's process keeps."""
    return dataclasses.replace(data, microgrids=())


class AgentDSOController(OptimalController):
    """The DSO side of the agent-mode ADMM (built from the full data, keeps the DSO's only)."""

    def __init__(
        self,
        data: NetworkData,
        net: pp.pandapowerNet,
        start_hour: float,
        n_periods: int = 24,
        period_h: float = 1.0,
        plan_steps: int = 4,
        settings: ADMMSettings | None = None,
    ) -> None:
        self.dd = dso_data(net, data)  # the PCC buses and limits are the DSO's network data
        self.names = sorted(self.dd.mg_bus)
        self.data, self.method, self.start_hour = dso_view(data), "admm", start_hour
        self.T, self.period_h, self.plan_steps = n_periods, period_h, plan_steps
        self.plan_ac = PlanACCheck(self.data)
        self.planner = TopologyPlanner(self.dd, n_periods, self.data)
        self.coordinator = ADMMCoordinator(self.dd, self.names, n_periods, settings, period_h)
        self.central = None
        self.warm = None
        self.mt_plan = None
        self.switch_history: list[tuple[int, int]] = []
        self.guess: dict[str, np.ndarray] = {}

    def plan(self, meas: Measurements, fc: Forecasts) -> Plan:
        raise TypeError("AgentDSOController plans through messages: drive plan_exchange()")

    def plan_exchange(self, meas: Measurements, fc: Forecasts) -> Exchange:
        """One controller step as an exchange with the microgrid agents; returns the plan."""
        t0 = time.perf_counter()
        current = {**default_topology(self.dd), **dict(meas.switch_closed)}
        self.coordinator.comm_stats = CommStats()  # this step's figures only
        try:
            replies = yield {g: {"kind": "horizon"} for g in self.names}
            raise_if_error(replies)
            self.guess = {g: np.asarray(replies[g]["pm_guess"], dtype=float) for g in self.names}
            q = {g: np.asarray(replies[g]["q_mvar"], dtype=float) for g in self.names}
            h = self._agent_inputs(meas, fc, current, q)
            plan = yield from self._solve_by_messages(h, fc)
        except STEP_FAILURES as err:
            log.warning("optimiser failed at t=%s s (%s); rule-based fallback", fc.time_s, err)
            replies = yield {g: {"kind": "fallback"} for g in self.names}
            plan = self._fallback_plan(fc, replies, err)
            self.warm = None
        if self.coordinator.comms is not None:
            plan.info.update(self.coordinator.comm_stats.record())
        self._record_switching(fc.time_s, current, plan)
        plan.info["wall_time_s"] = time.perf_counter() - t0
        return plan

    def _agent_inputs(
        self, meas: Measurements, fc: Forecasts, current: dict, q: dict[str, np.ndarray]
    ) -> HorizonInputs:
        h = horizon_inputs(
            fc, meas, self.data, self.dd, self.start_hour, self.period_h, self.T, [current] * self.T
        )
        h = dataclasses.replace(h, mg_q_mvar=q)
        budget = self.dd.switch_budget - self._actions_in_window(fc.time_s)
        schedule, self.topology_info = self.planner.schedule(h, self._pm_guess(h), current, budget)
        return dataclasses.replace(h, topology=schedule)

    def _pm_guess(self, h: HorizonInputs) -> dict[str, np.ndarray]:
        if self.warm is not None:
            return {g: self.warm.z[i] for i, g in enumerate(self.names)}
        return self.guess

    def _solve_by_messages(self, h: HorizonInputs, fc: Forecasts) -> Exchange:
        info: dict = {"controller": "admm", "plan_time_s": fc.time_s, **self.topology_info}
        warm = self.warm.shifted(1) if self.warm is not None else None
        res = yield from self.coordinator.run(h, warm, self.guess, fc.time_s)
        info.update(admm_info(res, None))
        self.warm = res.state
        if res.converged:
            info["status"] = "optimal"
        else:
            log.warning("ADMM did not converge at t=%s s; last iterate applied", fc.time_s)
            info["status"] = NOT_CONVERGED_LAST_ITERATE
        return self._plan_from(self.coordinator.dso.model, res.mg_plans, h, fc, info)

    def _fallback_plan(self, fc: Forecasts, replies: Requests, err: Exception) -> Plan:
        """The rule-based baseline: each microgrid's own set-points, the PV uncurtailed."""
        setpoints = {}
        for g in self.names:
            setpoints |= {u: np.array(v) for u, v in replies[g]["setpoints_mw"].items()}
        n = min(self.plan_steps, fc.n_steps)
        setpoints |= {pv.name: np.full(n, pv.p_rated_mw) for pv in self.data.pv}
        info = {
            "controller": "rule_based",
            "status": f"fallback_rule_based: {err}",
            "plan_time_s": fc.time_s,
        }
        return Plan(time_s=fc.time_s, step_h=fc.step_h, setpoints_mw=setpoints, info=info)
