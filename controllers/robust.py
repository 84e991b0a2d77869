"""Mobile energy storage (MESS) pre-positioning: the two-stage robust model (seed 002).

Per unit with S_base = 1 MVA; IEEE numbers. Before a forecast extreme event (:class:`Event`:
damaged branches, possibly the loss of the main grid) the first stage (binary) places MESS
units at candidate buses (``placed_c``, at most the fleet, one per bus) and sets branch
states ``alpha_l`` (damaged open, branches outside ``switchable`` at their normal state) and
with them the islands: bus energisation, grid-forming flags (microgrid DG, placed MESS, the
substation) and live branches, radial by single-commodity flow (:mod:`controllers.blocks`).
First-stage cost (CNY): placement per unit + switch cost per branch off its normal state.

Then PV is revealed, ``p_avail = forecast - dev u``, ``dev = pv_dev_frac forecast``, u in
[0, 1], ``sum_k u_k,t <= Gamma`` per period. The recourse (continuous, T periods of dt h):
served share of each load (0 .. energised) with a shed cost per tier; DG and MESS within
their ratings where energised (and placed), SOC from ``e_init placed``; PV 0 .. p_avail
with its power factor and free curtailment; LinDistFlow on live branches. It is an LP
``Q(x, u) = min c'y s.t. A y (>=, <=, =) b(x) - E u`` with complete recourse and c >= 0; no
charge/discharge binary (doing both only wastes energy, never worthwhile: the tests check).
:mod:`controllers.robust_ccg` holds the worst case (the recourse's dual) and C&CG.

The case, the event and the first-stage decision are in :mod:`controllers.robust_data`, the
builders in :mod:`controllers.robust_model`; this module reads a solved master's first stage
(:func:`first_stage_from`) and solves the recourse (:class:`Recourse`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from mgcosim.controllers.robust_data import FirstStage, RobustCase
from mgcosim.controllers.robust_model import build_recourse_model, set_first_stage, set_pv_avail
from mgcosim.controllers.solve import persistent_highs, solve_optimal
from mgcosim.networks.microgrid_internal import TIERS


# --- reading a solved master -------------------------------------------------------------
def first_stage_from(m: pyo.ConcreteModel, case: RobustCase) -> FirstStage:
    """The first stage of a solved master model."""

    def on(var) -> bool:
        return pyo.value(var) > 0.5

    closed = frozenset(int(ln) for ln in m.L if on(m.alpha[ln]))
    mess = frozenset(int(c) for c in m.C if on(m.placed[c]))
    sources = {int(c) for c in m.C if on(m.sigma_mess[c])}
    sources |= {case.dd.mg_bus[g] for g in m.G if on(m.sigma_dg[g])}
    sources |= {case.dd.root} if case.event.main_grid_available else set()
    damaged = case.event.damaged_branches
    actions = sum((ln in closed) != case.normal_closed(ln) for ln in m.L if ln not in damaged)
    return FirstStage(
        mess_buses=mess,
        closed_branches=closed,
        live_branches=frozenset(int(ln) for ln in m.L if on(m.live[ln])),
        energised_buses=frozenset(int(x) for x in m.B if on(m.energised[x])),
        source_buses=frozenset(sources),
        placement_cost_cny=case.mess.placement_cost_cny_per_unit * len(mess),
        switch_actions=int(actions),
        switch_cost_cny=case.dd.switch_cost * actions,
    )


# --- solving -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecourseResult:
    """The second stage for one first stage and one PV realisation."""

    cost_cny: float  # shedding + MESS throughput
    shed_cost_cny: float
    shed_mwh_by_tier: dict[int, float]
    pv_used_mwh: float
    dg_mwh: float
    mess_ch_mw: dict[int, np.ndarray]  # per placed unit (bus) and period
    mess_dis_mw: dict[int, np.ndarray]
    mess_soc_mwh: dict[int, np.ndarray]  # at the period end


class Recourse:
    """Solves the recourse LP for given first stages and PV realisations (persistent)."""

    def __init__(self, case: RobustCase) -> None:
        self.case = case
        self.model = build_recourse_model(case)
        self.solver = persistent_highs()

    def solve(self, fs: FirstStage, pv_mw: Mapping[str, np.ndarray]) -> RecourseResult:
        m, r, case = self.model, self.model.rec, self.case
        set_first_stage(m, fs)
        set_pv_avail(r, pv_mw)
        cost = solve_optimal(m, self.solver, "MESS recourse").objective
        shed: dict[int, float] = dict.fromkeys(TIERS, 0.0)
        for x, t in r.served:
            shed[case.tier.get(x, 3)] += (
                float(case.demand_mw[x][t]) * (1 - pyo.value(r.served[x, t])) * case.dt_h
            )

        def series(var, c):
            return np.array([pyo.value(var[c, t]) for t in m.T])

        return RecourseResult(
            cost_cny=cost,
            shed_cost_cny=pyo.value(r.shed_cost),
            shed_mwh_by_tier=shed,
            pv_used_mwh=case.dt_h * sum(pyo.value(r.pv[k, t]) for k in m.PV for t in m.T),
            dg_mwh=case.dt_h * sum(pyo.value(r.pdg[g, t]) for g in m.G for t in m.T),
            mess_ch_mw={c: series(r.ch, c) for c in sorted(fs.mess_buses)},
            mess_dis_mw={c: series(r.dis, c) for c in sorted(fs.mess_buses)},
            mess_soc_mwh={c: series(r.soc, c) for c in sorted(fs.mess_buses)},
        )
