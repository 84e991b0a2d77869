"""The two-stage robust MESS model's builders (seed 002; formulation: :mod:`controllers.robust`).

The first stage (placement, branch states, islands by single-commodity flow) and the recourse
(served load, DG, PV, MESS, LinDistFlow per period) as Pyomo blocks; the recourse takes the
first stage either as variables (:func:`build_master_model`, one recourse copy per PV scenario
added by :func:`add_scenario`) or as data (:func:`build_recourse_model`, set by
:func:`set_first_stage` and :func:`set_pv_avail`). Builders return models and never solve:
:class:`controllers.robust.Recourse` and :mod:`controllers.robust_ccg` solve.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyomo.environ as pyo

from mgcosim.controllers import blocks
from mgcosim.controllers.robust_data import FirstStage, RobustCase
from mgcosim.networks.storage import energy_change_mwh


# --- model: sets ---------------------------------------------------------------------------
def declare_sets(m: pyo.Block, case: RobustCase) -> None:
    m.T = pyo.RangeSet(0, case.n_periods - 1)
    m.B = pyo.Set(initialize=case.dd.buses)
    m.L = pyo.Set(initialize=[b.ieee for b in case.dd.branches])
    m.C = pyo.Set(initialize=case.mess.candidate_buses_ieee)  # MESS candidate buses
    m.G = pyo.Set(initialize=sorted(case.dg_p_max_mw))  # microgrid DG
    m.PV = pyo.Set(initialize=sorted(case.pv_forecast_mw))  # PV units
    m.D = pyo.Set(  # buses with a load
        initialize=[b for b in case.dd.buses if np.any(np.asarray(case.demand_mw.get(b, 0.0)) > 0)]
    )


# --- model: first stage --------------------------------------------------------------------
def declare_first_stage_vars(m: pyo.Block, case: RobustCase) -> None:
    m.alpha = pyo.Var(m.L, within=pyo.Binary)  # branch closed
    m.live = pyo.Var(m.L, bounds=(0, 1))  # closed and energised (= alpha energised_from)
    m.energised = pyo.Var(m.B, within=pyo.Binary)  # bus energised
    m.placed = pyo.Var(m.C, within=pyo.Binary)  # MESS placed
    m.sigma_mess = pyo.Var(m.C, within=pyo.Binary)  # placed MESS forms an island
    m.sigma_dg = pyo.Var(m.G, within=pyo.Binary)  # microgrid DG forms an island
    for ln in m.L:
        if ln in case.event.damaged_branches:
            m.alpha[ln].fix(0)
        elif ln not in case.switchable:
            m.alpha[ln].fix(int(case.normal_closed(ln)))
    if case.event.main_grid_available:
        m.energised[case.dd.root].fix(1)


def declare_fleet(m: pyo.Block, case: RobustCase) -> None:
    m.fleet = pyo.Constraint(
        expr=pyo.quicksum(m.placed[c] for c in m.C) <= case.mess.fleet_size_units
    )


def declare_sources(m: pyo.Block, case: RobustCase) -> None:
    """Grid formers (DG, placed MESS, the substation when available) and radiality: single-
    commodity flow with virtual sources, islands with one source each, no loop."""
    dd, n_bus, main = case.dd, len(case.dd.buses), case.event.main_grid_available
    m.sigma_mess_placed = pyo.Constraint(m.C, rule=lambda _, c: m.sigma_mess[c] <= m.placed[c])
    flags = {
        "sigma_mess_energised": (m.sigma_mess, m.C, {c: c for c in m.C}),
        "sigma_dg_energised": (m.sigma_dg, m.G, dd.mg_bus),
    }
    candidates = [*m.C, *dd.mg_bus.values(), *([dd.root] if main else [])]
    several = [b for b in dd.buses if candidates.count(b) > 1]
    sources = blocks.declare_grid_forming(m, flags, several, lambda b: int(b == dd.root and main))
    blocks.declare_commodity_vars(m, n_bus)
    blocks.declare_live_branches(m, dd.branches)
    blocks.declare_commodity_flow(m, dd.branches, n_bus, sources)


def declare_first_stage_cost(m: pyo.Block, case: RobustCase) -> None:
    def action(ln):
        return 1 - m.alpha[ln] if case.normal_closed(ln) else m.alpha[ln]

    m.placement_cost = pyo.Expression(
        expr=case.mess.placement_cost_cny_per_unit * pyo.quicksum(m.placed[c] for c in m.C)
    )
    m.switch_cost = pyo.Expression(
        expr=case.dd.switch_cost
        * pyo.quicksum(action(ln) for ln in m.L if ln not in case.event.damaged_branches)
    )
    m.first_stage_cost = pyo.Expression(expr=m.placement_cost + m.switch_cost)


def declare_first_stage_params(m: pyo.Block) -> None:
    """The first stage as data (for the recourse alone): same names as the variables."""
    m.live = pyo.Param(m.L, mutable=True, initialize=0.0)
    m.energised = pyo.Param(m.B, mutable=True, initialize=0.0)
    m.placed = pyo.Param(m.C, mutable=True, initialize=0.0)


# --- model: recourse (second stage) --------------------------------------------------------
def declare_recourse_vars(b: pyo.Block, case: RobustCase) -> None:
    s = b.model()
    b.P = pyo.Var(s.L, s.T)
    b.Q = pyo.Var(s.L, s.T)
    b.v = pyo.Var(s.B, s.T, bounds=(0.0, case.dd.v_max_pu**2), initialize=1.0)
    b.served = pyo.Var(s.D, s.T, within=pyo.NonNegativeReals)
    b.pv = pyo.Var(s.PV, s.T, within=pyo.NonNegativeReals)
    b.qpv = pyo.Var(s.PV, s.T)
    b.pdg = pyo.Var(s.G, s.T, within=pyo.NonNegativeReals)
    b.qdg = pyo.Var(s.G, s.T)
    b.ch = pyo.Var(s.C, s.T, within=pyo.NonNegativeReals)
    b.dis = pyo.Var(s.C, s.T, within=pyo.NonNegativeReals)
    b.qmess = pyo.Var(s.C, s.T)
    b.soc = pyo.Var(s.C, s.T, within=pyo.NonNegativeReals)
    if case.event.main_grid_available:
        p0 = case.dd.substation_p_max_mw
        b.P0 = pyo.Var(s.T, bounds=(-p0, p0))
        b.Q0 = pyo.Var(s.T, bounds=(-p0, p0))
    b.pv_avail = pyo.Param(s.PV, s.T, mutable=True, initialize=0.0)


def declare_power_flow(b: pyo.Block, case: RobustCase, fs: pyo.Block) -> None:
    """LinDistFlow on live branches (flow limits, voltage drops); the band on energised buses."""
    s, dd = b.model(), case.dd
    big_m = dd.v_max_pu**2 + 0.5  # > any |v_j - v_i + 2 (r P + x Q)| on a dead branch
    s_max = {br.ieee: br.s_max_pu for br in dd.branches}
    blocks.declare_flow_limits(b, s_max, lambda ln, t: fs.live[ln], s.L, s.T)
    blocks.declare_voltage_drop(b, dd.branches, lambda ln, t: fs.live[ln], big_m, s.L, s.T)
    b.v_min = pyo.Constraint(
        s.B, s.T, rule=lambda _, x, t: b.v[x, t] >= dd.v_min_pu**2 * fs.energised[x]
    )
    if case.event.main_grid_available:
        b.v_root = pyo.Constraint(s.T, rule=lambda _, t: b.v[dd.root, t] == dd.v_root_pu**2)


def declare_balance(b: pyo.Block, case: RobustCase) -> None:
    s, dd = b.model(), case.dd
    inc = blocks.Incidence.of(dd.branches, dd.buses)
    dg_at = {x: [g for g, at in dd.mg_bus.items() if at == x] for x in dd.buses}
    pv_at = {x: [k for k in case.pv_forecast_mw if dd.pv_bus[k] == x] for x in dd.buses}
    main = case.event.main_grid_available

    def balance(name, flow, pv, dg, storage, root, demand):
        def supply(bus, t):
            own = [pv[k, t] for k in pv_at[bus]] + [dg[g, t] for g in dg_at[bus]]
            own += [storage(bus, t)] if bus in s.C else []
            return pyo.quicksum(own + [root[t]] if main and bus == dd.root else own)

        def served(bus, t):
            return float(demand[bus][t]) * b.served[bus, t] if bus in s.D else 0.0

        blocks.declare_bus_balance(b, name, inc, flow, supply, served, s.B, s.T)

    p_mess = lambda c, t: b.dis[c, t] - b.ch[c, t]  # noqa: E731
    balance("balance_p", b.P, b.pv, b.pdg, p_mess, b.find_component("P0"), case.demand_mw)
    q_mess = lambda c, t: b.qmess[c, t]  # noqa: E731
    balance("balance_q", b.Q, b.qpv, b.qdg, q_mess, b.find_component("Q0"), case.demand_mvar)


def declare_service(b: pyo.Block, fs: pyo.Block) -> None:
    s = b.model()
    b.served_energised = pyo.Constraint(
        s.D, s.T, rule=lambda _, x, t: b.served[x, t] <= fs.energised[x]
    )


def declare_pv(b: pyo.Block, case: RobustCase, fs: pyo.Block) -> None:
    s, bus = b.model(), case.dd.pv_bus
    forecast, ratio = case.pv_forecast_mw, case.pv_q_ratio
    b.pv_cap = pyo.Constraint(s.PV, s.T, rule=lambda _, k, t: b.pv[k, t] <= b.pv_avail[k, t])
    b.pv_on = pyo.Constraint(
        s.PV, s.T, rule=lambda _, k, t: b.pv[k, t] <= float(forecast[k][t]) * fs.energised[bus[k]]
    )
    blocks.declare_symmetric_limit(
        b, "pv_q", (s.PV, s.T), lambda k, t: b.qpv[k, t], lambda k, t: ratio[k] * b.pv[k, t]
    )


def declare_dg(b: pyo.Block, case: RobustCase, fs: pyo.Block) -> None:
    s, bus = b.model(), case.dd.mg_bus
    p_max, q_max = case.dg_p_max_mw, case.dg_q_max_mvar
    on = {g: fs.energised[bus[g]] for g in s.G}
    b.dg_p_on = pyo.Constraint(s.G, s.T, rule=lambda _, g, t: b.pdg[g, t] <= p_max[g] * on[g])
    blocks.declare_symmetric_limit(
        b, "dg_q", (s.G, s.T), lambda g, t: b.qdg[g, t], lambda g, t: q_max[g] * on[g]
    )


def declare_mess(b: pyo.Block, case: RobustCase, fs: pyo.Block) -> None:
    s, u, dt = b.model(), case.mess, case.dt_h
    p_max, q_max = u.p_max_mw, u.q_max_mvar
    limits = (("ch", b.ch, p_max, 1), ("dis", b.dis, p_max, 1), ("q_up", b.qmess, q_max, 1))
    for name, var, lim, sign in (*limits, ("q_dn", b.qmess, q_max, -1)):
        for where, gate in (("placed", fs.placed), ("on", fs.energised)):

            def rule(_, c, t, v=var, x=lim, g=gate, k=sign):
                return v[c, t] <= x * g[c] if k > 0 else v[c, t] >= -x * g[c]

            b.add_component(f"{name}_{where}", pyo.Constraint(s.C, s.T, rule=rule))

    def before(c, t):
        return u.e_init_mwh * fs.placed[c] if t == 0 else b.soc[c, t - 1]

    def change(c, t):
        return energy_change_mwh(b.ch[c, t], b.dis[c, t], u.eta_ch, u.eta_dis, dt)

    blocks.declare_soc_dynamics(b, "soc_dyn", b.soc, before, change, s.C, s.T)
    b.soc_max = pyo.Constraint(
        s.C, s.T, rule=lambda _, c, t: b.soc[c, t] <= u.e_max_mwh * fs.placed[c]
    )
    b.soc_min = pyo.Constraint(
        s.C, s.T, rule=lambda _, c, t: b.soc[c, t] >= u.e_min_mwh * fs.placed[c]
    )


def declare_recourse_cost(b: pyo.Block, case: RobustCase) -> None:
    s, dt = b.model(), case.dt_h
    load = {(x, t): case.shed_cost(x) * float(case.demand_mw[x][t]) for x in s.D for t in s.T}
    shed = pyo.quicksum(load[x, t] * (1 - b.served[x, t]) for x in s.D for t in s.T)
    b.shed_cost = pyo.Expression(expr=dt * shed)
    throughput = pyo.quicksum(b.ch[c, t] + b.dis[c, t] for c in s.C for t in s.T)
    b.throughput_cost = pyo.Expression(expr=case.mess.throughput_cost_cny_per_mwh * dt * throughput)
    b.cost = pyo.Expression(expr=b.shed_cost + b.throughput_cost)


def declare_recourse(b: pyo.Block, case: RobustCase, fs: pyo.Block) -> None:
    """Populate ``b`` with the recourse; ``fs`` holds the first stage (variables or data)."""
    declare_recourse_vars(b, case)
    declare_power_flow(b, case, fs)
    declare_balance(b, case)
    declare_service(b, fs)
    declare_pv(b, case, fs)
    declare_dg(b, case, fs)
    declare_mess(b, case, fs)
    declare_recourse_cost(b, case)


# --- builders ------------------------------------------------------------------------------
def build_master_model(
    case: RobustCase, scenarios: list[Mapping[str, np.ndarray]] | tuple = ()
) -> pyo.ConcreteModel:
    """First stage plus eta >= recourse cost of each PV scenario (own copy of y each)."""
    m = pyo.ConcreteModel(name="mess_master")
    declare_sets(m, case)
    declare_first_stage_vars(m, case)
    declare_fleet(m, case)
    declare_sources(m, case)
    declare_first_stage_cost(m, case)
    m.eta = pyo.Var(within=pyo.NonNegativeReals)
    m.obj = pyo.Objective(expr=m.first_stage_cost + m.eta)
    m.n_scenarios = 0
    for pv_mw in scenarios:
        add_scenario(m, case, pv_mw)
    return m


def add_scenario(m: pyo.ConcreteModel, case: RobustCase, pv_mw: Mapping[str, np.ndarray]):
    """A column (recourse copy) and its constraint eta >= cost for one PV realisation."""
    blk = pyo.Block()
    m.add_component(f"scenario_{m.n_scenarios}", blk)
    m.n_scenarios += 1
    declare_recourse(blk, case, fs=m)
    set_pv_avail(blk, pv_mw)
    blk.eta_cut = pyo.Constraint(expr=m.eta >= blk.cost)
    return blk


def build_recourse_model(case: RobustCase) -> pyo.ConcreteModel:
    """The recourse LP for a first stage given as data (:func:`set_first_stage`)."""
    m = pyo.ConcreteModel(name="mess_recourse")
    declare_sets(m, case)
    declare_first_stage_params(m)
    m.rec = pyo.Block()
    declare_recourse(m.rec, case, fs=m)
    m.obj = pyo.Objective(expr=m.rec.cost)
    return m


def set_pv_avail(b: pyo.Block, pv_mw: Mapping[str, np.ndarray]) -> None:
    for (k, t), p in b.pv_avail.items():
        p.set_value(float(pv_mw[k][t]))


def set_first_stage(m: pyo.Block, fs: FirstStage) -> None:
    """Fix the first-stage data of a recourse model."""
    chosen = {"live": fs.live_branches, "energised": fs.energised_buses, "placed": fs.mess_buses}
    for name, on in chosen.items():
        for key, p in m.component(name).items():
            p.set_value(float(key in on))
