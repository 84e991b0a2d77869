"""Per-horizon switch schedule: cached candidate topologies + dynamic programme.

The binary multi-period reconfiguration does not solve in the time of a rolling horizon
with HiGHS (DESIGN.md section 6), so the time dimension is decomposed: a small set of
radial candidates (the default topology and single-period loss-minimising ones at the
valley, flat and peak load of the first horizon: :func:`controllers.topology.candidate_topologies`)
is computed once per run; each horizon, every candidate's DSO cost in every period is
evaluated with the microgrids' expected exchanges (one persistent fixed-topology LP per
candidate, its losses refined by :mod:`controllers.loss_cuts`; the cuts stay for the later
horizons), and :func:`controllers.topology.schedule_topologies` picks the cheapest
sequence within the remaining switching budget, switching cost included. The ADMM then
runs on continuous subproblems with that schedule fixed.
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
from mgcosim.controllers.solve import persistent_highs, solve_optimal
from mgcosim.controllers.topology import (
    action_matrix,
    candidate_topologies,
    schedule_topologies,
    switch_actions,
)

Closed = dict[int, bool]


class TopologyPlanner:
    """Chooses the switch states of every period of a horizon."""

    def __init__(self, dd: DSOData, n_periods: int) -> None:
        self.dd, self.T = dd, n_periods
        self.candidates: list[Closed] | None = None
        self.models: list[pyo.ConcreteModel] = []
        self.solvers: list = []

    def _prepare(self, h: HorizonInputs, pm_mw: dict[str, np.ndarray]) -> None:
        """Candidates from the first horizon's loads (kept for the run) and their models."""
        scale = total_load_scale(self.dd, h)
        self.candidates = known_candidates(self.dd, scale, pm_mw, h.pv_mw, h.mg_q_mvar)
        for closed in self.candidates:
            m = dso_mod.build_dso_model(self.dd, self.T)
            self.models.append(m)
            self.solvers.append(persistent_highs())
            dso_mod.set_topology(m, closed)

    def period_costs(self, h: HorizonInputs, pm_mw: dict[str, np.ndarray]) -> np.ndarray:
        """[T, C] DSO cost of each candidate per period at the given exchanges (+inf if none)."""
        costs = np.full((self.T, len(self.candidates)), np.inf)
        for c, (m, solver) in enumerate(zip(self.models, self.solvers, strict=True)):
            set_dso_inputs(m, self.dd, h)
            dso_mod.set_topology(m, self.candidates[c])
            for (g, t), var in m.pm.items():
                var.fix(float(pm_mw[g][t]))
            try:
                solve_tight(
                    m,
                    self.dd,
                    lambda m=m, s=solver, c=c: solve_optimal(m, s, f"candidate topology {c}"),
                    solver,
                )
            except InfeasibleError:
                continue
            r = {b.ieee: b.r_pu for b in self.dd.branches}
            for t in range(self.T):
                losses = sum(r[ln] * pyo.value(dso_mod.ell(m, ln, t)) for ln in m.L)
                curtail = sum(pyo.value(m.pv_avail[p, t] - m.pv[p, t]) for p in m.PV)
                costs[t, c] = pyo.value(m.dt_h) * (
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
