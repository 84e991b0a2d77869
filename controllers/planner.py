"""Per-horizon switch schedule: cached candidate topologies + dynamic programme.

The binary multi-period reconfiguration does not solve in the time of a rolling horizon
with HiGHS (DESIGN.md section 6), so the time dimension is decomposed: a small set of
radial candidates (the default topology and single-period loss-minimising ones at the
valley, flat and peak load of the first horizon: :func:`controllers.topology.candidate_topologies`)
is computed once per run; each horizon, every candidate's DSO cost in every period is
evaluated with the microgrids' expected exchanges, and
:func:`controllers.topology.schedule_topologies` picks the cheapest sequence within the
remaining switching budget, switching cost included. The ADMM then runs on continuous
subproblems with that schedule fixed.

A candidate's period cost is what the DSO model's fixed-topology LP would give, its losses
at the loss price plus its PV curtailment at the curtailment price. With the exchanges
fixed, the LP's only choice is the curtailment, and it never pays when the curtailment
price is at least the loss price (a MW of PV changes the losses by less than a MW); so
each period is an AC power flow of the candidate's net (:mod:`controllers.plan_check`,
reused between periods: about 11 ms a period, set-up and checks included), its losses at
the loss price. The branch flow equations of the LP's refined cone are the AC ones of a
radial network, so the two agree within the cone's tolerance. Where a flow breaks a limit
of the DSO model (voltage band, branch flow or current, substation), or the prices do not
allow it, that candidate is costed by its LP as before (one persistent model per
candidate, losses refined by :mod:`controllers.loss_cuts`, the cuts kept for later
horizons).
"""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pyomo.environ as pyo

from mgcosim.controllers import dso as dso_mod
from mgcosim.controllers.coupled import HorizonInputs, set_dso_inputs
from mgcosim.controllers.dso import DSOData
from mgcosim.controllers.errors import InfeasibleError
from mgcosim.controllers.loss_cuts import solve_tight
from mgcosim.controllers.plan_check import PlanACCheck, net_withdrawals
from mgcosim.controllers.solve import persistent_highs, solve_optimal
from mgcosim.controllers.topology import (
    action_matrix,
    candidate_topologies,
    schedule_topologies,
    switch_actions,
)
from mgcosim.networks.params import NetworkData
from mgcosim.networks.powerflow import run_power_flow

Closed = dict[int, bool]


class TopologyPlanner:
    """Chooses the switch states of every period of a horizon.

    ``data``: the network data for the candidates' AC nets (the DSO's view suffices: the
    microgrids' units are idle there); None costs every candidate by its LP.
    """

    def __init__(self, dd: DSOData, n_periods: int, data: NetworkData | None = None) -> None:
        self.dd, self.T, self.data = dd, n_periods, data
        self.candidates: list[Closed] | None = None
        self.nets: list[PlanACCheck] = []
        self.models: dict[int, tuple[pyo.ConcreteModel, object]] = {}  # built on first use

    def _prepare(self, h: HorizonInputs, pm_mw: dict[str, np.ndarray]) -> None:
        """Candidates from the first horizon's loads (kept for the run) and their AC nets."""
        scale = total_load_scale(self.dd, h)
        self.candidates = known_candidates(self.dd, scale, pm_mw, h.pv_mw, h.mg_q_mvar)
        if self.data is None or self.dd.curtail_cost < self.dd.loss_cost:
            return
        for closed in self.candidates:
            self.nets.append(PlanACCheck(self.data))
            self.nets[-1].set_topology(closed)

    def period_costs(self, h: HorizonInputs, pm_mw: dict[str, np.ndarray]) -> np.ndarray:
        """[T, C] DSO cost of each candidate per period at the given exchanges (+inf if none)."""
        costs = np.full((self.T, len(self.candidates)), np.inf)
        for c in range(len(self.candidates)):
            ac = self.ac_costs(c, h, pm_mw) if self.nets else None
            costs[:, c] = ac if ac is not None else self.lp_costs(c, h, pm_mw)
        return costs

    def ac_costs(self, c: int, h: HorizonInputs, pm_mw: dict[str, np.ndarray]) -> np.ndarray | None:
        """[T] losses of candidate ``c`` by AC power flow at the loss price, nothing curtailed;
        None when a period's flow does not converge or breaks a limit of the DSO model."""
        costs = np.empty(self.T)
        for t in range(self.T):
            net = self.nets[c].set_withdrawals(*period_withdrawals(self.dd, h, pm_mw, t))
            if not (run_power_flow(net, recycle=True) and within_dso_limits(net, self.dd)):
                return None
            costs[t] = (
                h.dt_h * self.dd.loss_cost * float(net.res_line.pl_mw[net.line.ieee > 0].sum())
            )
        return costs

    def lp_costs(self, c: int, h: HorizonInputs, pm_mw: dict[str, np.ndarray]) -> np.ndarray:
        """[T] cost of candidate ``c`` by its fixed-topology LP, losses refined (+inf if
        infeasible)."""
        if c not in self.models:
            self.models[c] = (dso_mod.build_dso_model(self.dd, self.T), persistent_highs())
        m, solver = self.models[c]
        set_dso_inputs(m, self.dd, h)
        dso_mod.set_topology(m, self.candidates[c])
        for (g, t), var in m.pm.items():
            var.fix(float(pm_mw[g][t]))
        try:
            solve_tight(
                m,
                self.dd,
                lambda: solve_optimal(m, solver, f"candidate topology {c}"),
                solver,
            )
        except InfeasibleError:
            return np.full(self.T, np.inf)
        r = {b.ieee: b.r_pu for b in self.dd.branches}
        costs = np.empty(self.T)
        for t in range(self.T):
            losses = sum(r[ln] * pyo.value(dso_mod.ell(m, ln, t)) for ln in m.L)
            curtail = sum(pyo.value(m.pv_avail[p, t] - m.pv[p, t]) for p in m.PV)
            costs[t] = pyo.value(m.dt_h) * (
                self.dd.loss_cost * losses + self.dd.curtail_cost * curtail
            )
        return costs

    def schedule(
        self, h: HorizonInputs, pm_mw: dict[str, np.ndarray], current: Closed, budget: int
    ) -> tuple[list[Closed], dict]:
        """Switch states per period and a record of the decision. A network without any
        switching budget keeps ``current``, and no candidate is computed."""
        if self.dd.switch_budget <= 0:
            return [dict(current)] * self.T, {"topology_status": "kept (switching budget 0)"}
        if self.candidates is None:
            self._prepare(h, pm_mw)
        candidates = self.candidates
        costs = self.period_costs(h, pm_mw)
        first = np.array([switch_actions(current, c) for c in candidates])
        try:
            path, total = schedule_topologies(
                costs, action_matrix(candidates), first, max(budget, 0), self.dd.switch_cost
            )
        except InfeasibleError:  # nothing within budget: keep the current topology
            return [dict(current)] * self.T, {"topology_status": "kept (no feasible schedule)"}
        return [candidates[c] for c in path], {
            "topology_status": "scheduled",
            "topology_cost_cny": total,
            "n_candidates": len(candidates),
        }


def period_withdrawals(
    dd: DSOData, h: HorizonInputs, pm_mw: dict[str, np.ndarray], t: int
) -> tuple[dict[int, float], dict[int, float]]:
    """Period ``t``'s withdrawals per IEEE bus with every PV unit at its forecast."""
    load_p = {bus: float(p[t]) for bus, p in h.dso_load_mw.items()}
    load_q = {bus: p * dd.load_q_per_p(bus) for bus, p in load_p.items()}
    pv = {name: float(v[t]) for name, v in h.pv_mw.items()}
    pm = {g: float(v[t]) for g, v in pm_mw.items()}
    q = {g: float(v[t]) for g, v in h.mg_q_mvar.items()}
    return net_withdrawals(dd, load_p, load_q, pv, pm, q)


def within_dso_limits(net, dd: DSOData) -> bool:
    """Whether an AC flow keeps the DSO model's limits: the voltage band at every IEEE bus,
    each branch's P and Q within its rating and its current within its maximum, the
    substation's P and Q within its maximum."""
    ieee = net.bus.ieee > 0
    vm = net.res_bus.vm_pu[ieee].to_numpy()
    lines = net.line.ieee > 0
    res = net.res_line[lines]
    s_max = {b.ieee: b.s_max_pu for b in dd.branches}
    rating = net.line.ieee[lines].map(s_max).to_numpy()
    grid = net.res_ext_grid
    return bool(
        np.all((vm >= dd.v_min_pu) & (vm <= dd.v_max_pu))
        and np.all(res.p_from_mw.abs().to_numpy() <= rating)
        and np.all(res.q_from_mvar.abs().to_numpy() <= rating)
        and np.all(res.i_ka.to_numpy() <= net.line.max_i_ka[lines].to_numpy())
        and np.all(grid.p_mw.abs() <= dd.substation_p_max_mw)
        and np.all(grid.q_mvar.abs() <= dd.substation_p_max_mw)
    )


def total_load_scale(dd: DSOData, h: HorizonInputs) -> np.ndarray:
    """DSO demand per period relative to the nominal total (1.0 = IEEE 33 base case)."""
    nominal = sum(dd.load_p_nom_mw.values())
    return sum(h.dso_load_mw.values()) / nominal


_KNOWN: dict[str, list[Closed]] = {}  # candidates by their inputs' digest, in this process


def known_candidates(dd: DSOData, scale: np.ndarray, *profiles: dict | None) -> list[Closed]:
    """:func:`candidate_topologies` of these inputs, solved once per process: the MILPs are
    deterministic, so a run with the same first horizon (another fault case or controller
    of one scenario and seed, as in a sweep) reuses them and gets the same schedule."""
    key = inputs_digest(dd, scale, *profiles)
    if key not in _KNOWN:
        _KNOWN[key] = candidate_topologies(dd, scale, *profiles)
    return [dict(closed) for closed in _KNOWN[key]]


def inputs_digest(*inputs) -> str:
    """SHA-256 of the pickled inputs: equal for equal data (dicts in the same order)."""
    return hashlib.sha256(pickle.dumps(inputs)).hexdigest()
