"""DSO (upper level): multi-period DistFlow with losses, switch states and radiality.

Per unit with S_base = 1 MVA; for each period t and branch (i, j) with switch state alpha:
flows P, Q at the sending end i, squared current ell = lp + lq, squared voltage v, and

* losses: the cone ell v_i >= P^2 + Q^2 as lp >= P^2 / v_i, lq >= Q^2 / v_i by tangent cuts
  (:func:`controllers.blocks.declare_loss_cuts`), refined at solutions by
  :mod:`controllers.loss_cuts` until the cone holds within a tolerance;
* balance: sum_in (P - r ell) - sum_out P = load - PV + microgrid imports (and Q alike);
* voltage: |v_j - v_i + 2 (r P + x Q) - (r^2 + x^2) ell| <= M (1 - alpha);
* limits: |P|, |Q| <= S_max alpha, ell <= I_max^2 alpha, v_min^2 <= v <= v_max^2, the PCC
  and substation limits;
* binary switches: spanning-tree radiality and ``sum_t sum_l |alpha_t - alpha_t-1| <= N_sw``.

Objective (CNY): losses + switching + PV curtailment (the wheeling fee is a transfer settled
in the accounts, :mod:`controllers.microgrid`). :func:`dso_data` extracts the data;
:func:`build_dso_model` returns a model and never solves.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandapower as pp
import pyomo.environ as pyo

from mgcosim.controllers import blocks
from mgcosim.controllers.errors import NotConvergedError
from mgcosim.controllers.units import i_base_ka, z_base_ohm
from mgcosim.networks.params import NetworkData
from mgcosim.networks.powerflow import run_power_flow

BIG_M_VOLTAGE = 0.5  # > v_max^2 - v_min^2 for any sensible voltage band


@dataclass(frozen=True)
class Branch:
    ieee: int
    from_bus: int  # IEEE bus numbers
    to_bus: int
    r_pu: float
    x_pu: float
    s_max_pu: float  # apparent power limit at nominal voltage (pu = MVA)
    i2_max_pu: float  # squared current limit (pu)
    is_tie: bool


@dataclass(frozen=True)
class DSOData:
    """What the DSO model needs, extracted from the network and its parameter data."""

    buses: tuple[int, ...]  # IEEE numbers, root first
    root: int
    branches: tuple[Branch, ...]
    load_p_nom_mw: dict[int, float]  # per IEEE bus
    load_q_nom_mvar: dict[int, float]
    pv_bus: dict[str, int]
    mg_bus: dict[str, int]
    mg_p_max_mw: dict[str, float]
    v_min_pu: float
    v_max_pu: float
    v_root_pu: float
    loss_cost: float  # CNY/MWh
    switch_cost: float  # CNY/action
    switch_budget: int
    curtail_cost: float  # CNY/MWh
    substation_p_max_mw: float
    v_hat_pu: dict[int, float] | None = None  # voltage magnitude used in the loss cuts

    def load_q_per_p(self, bus: int) -> float:
        """Q / P of the load at ``bus`` at its nominal power factor (0 without a load)."""
        p_nom = self.load_p_nom_mw.get(bus, 0.0)
        return self.load_q_nom_mvar.get(bus, 0.0) / p_nom if p_nom > 0 else 0.0


def dso_data(net: pp.pandapowerNet, data: NetworkData) -> DSOData:
    """Extract the DSO model's data from a built IEEE 33 net (``networks.ieee33``)."""
    ieee_lines = net.line[net.line["ieee"] > 0].sort_values("ieee")
    ties = set(data.branches.loc[data.branches.is_tie == 1, "branch_ieee"])
    branches = tuple(_branch(net, row, int(row.ieee) in ties) for _, row in ieee_lines.iterrows())
    dso_loads = net.load[net.load.name.str.startswith("load_b")]
    bus_of = net.bus["ieee"]

    def per_bus(column: str) -> dict[int, float]:
        pairs = zip(dso_loads.bus, dso_loads[column], strict=True)
        return {int(bus_of.at[b]): float(v) for b, v in pairs}

    return DSOData(
        buses=tuple(sorted(int(b) for b in bus_of if b > 0)),
        root=int(bus_of.at[int(net.ext_grid.bus.iloc[0])]),
        branches=branches,
        load_p_nom_mw=per_bus("p_nom_mw"),
        load_q_nom_mvar=per_bus("q_nom_mvar"),
        pv_bus={pv.name: pv.bus_ieee for pv in data.pv},
        mg_bus={mg.name: mg.bus_ieee for mg in data.microgrids},
        mg_p_max_mw={mg.name: mg.pcc_p_max_mw for mg in data.microgrids},
        v_min_pu=data.dso.v_min_pu,
        v_max_pu=data.dso.v_max_pu,
        v_root_pu=data.dso.vm_ext_grid_pu,
        loss_cost=data.dso.loss_cost_cny_per_mwh,
        switch_cost=data.dso.switch_cost_cny_per_action,
        switch_budget=data.dso.switch_budget_per_horizon,
        curtail_cost=data.dso.pv_curtail_cost_cny_per_mwh,
        substation_p_max_mw=data.dso.substation_p_max_mw,
        v_hat_pu=base_case_voltages(net),
    )


def base_case_voltages(net: pp.pandapowerNet) -> dict[int, float]:
    """AC voltages (pu) of the IEEE buses at nominal DSO load, default topology, no DER.

    The loss cuts divide by v^2 (ell = (P^2 + Q^2) / v): these fixed values make the
    linear loss model match AC losses at heavy load instead of assuming 1 pu everywhere.
    """
    base = copy.deepcopy(net)
    base.load.loc[~base.load.name.str.startswith("load_b"), "in_service"] = False
    base.sgen["p_mw"] = 0.0
    base.storage["p_mw"] = 0.0
    if not run_power_flow(base):
        raise NotConvergedError("no AC power flow of the base case (nominal load)")
    return {
        int(base.bus.at[i, "ieee"]): float(v)
        for i, v in base.res_bus.vm_pu.items()
        if base.bus.at[i, "ieee"] > 0
    }


def _branch(net: pp.pandapowerNet, row, is_tie: bool) -> Branch:
    vn_kv = float(net.bus.at[int(row.from_bus), "vn_kv"])
    z_base = z_base_ohm(vn_kv)
    i_max_pu = float(row.max_i_ka) / i_base_ka(vn_kv)
    return Branch(
        ieee=int(row.ieee),
        from_bus=int(net.bus.at[int(row.from_bus), "ieee"]),
        to_bus=int(net.bus.at[int(row.to_bus), "ieee"]),
        r_pu=float(row.r_ohm_per_km * row.length_km) / z_base,
        x_pu=float(row.x_ohm_per_km * row.length_km) / z_base,
        s_max_pu=i_max_pu * 1.0,  # S = V I with V = 1 pu
        i2_max_pu=i_max_pu**2,
        is_tie=is_tie,
    )


def default_topology(dd: DSOData) -> dict[int, bool]:
    """Normally open ties, every other branch closed."""
    return {b.ieee: not b.is_tie for b in dd.branches}


def unknown_branches(dd: DSOData, numbers) -> list[int]:
    """The IEEE branch numbers among ``numbers`` that the network does not have, sorted."""
    return sorted(set(numbers) - {b.ieee for b in dd.branches})


# --- model building: sets and parameters -------------------------------------------------
def declare_sets(m: pyo.Block, dd: DSOData, n_periods: int) -> None:
    m.T = pyo.RangeSet(0, n_periods - 1)
    m.B = pyo.Set(initialize=dd.buses)
    m.L = pyo.Set(initialize=[b.ieee for b in dd.branches])
    m.M = pyo.Set(initialize=sorted(dd.mg_bus))
    m.PV = pyo.Set(initialize=sorted(dd.pv_bus))


def declare_params(m: pyo.Block, dd: DSOData) -> None:
    m.dt_h = pyo.Param(mutable=True, initialize=1.0)
    m.load_p = pyo.Param(m.B, m.T, mutable=True, initialize=0.0)
    m.load_q = pyo.Param(m.B, m.T, mutable=True, initialize=0.0)
    m.pv_avail = pyo.Param(m.PV, m.T, mutable=True, initialize=0.0)
    m.mg_q = pyo.Param(m.M, m.T, mutable=True, initialize=0.0)  # microgrid Q import (Mvar)
    v_hat = dd.v_hat_pu or {}
    m.v_hat = pyo.Param(m.B, initialize=lambda _, b: v_hat.get(b, 1.0) ** 2)  # fixed: see cuts
    m.alpha_fixed = pyo.Param(m.L, m.T, mutable=True, initialize=1.0)
    m.alpha_initial = pyo.Param(m.L, mutable=True, initialize=1.0)
    m.switch_budget = pyo.Param(mutable=True, initialize=dd.switch_budget)


# --- variables ---------------------------------------------------------------------------
def declare_vars(m: pyo.Block, dd: DSOData, binary: bool) -> None:
    s_max = {b.ieee: b.s_max_pu for b in dd.branches}
    m.P = pyo.Var(m.L, m.T, bounds=lambda _, ln, t: (-s_max[ln], s_max[ln]))
    m.Q = pyo.Var(m.L, m.T, bounds=lambda _, ln, t: (-s_max[ln], s_max[ln]))
    m.lp = pyo.Var(m.L, m.T, within=pyo.NonNegativeReals)
    m.lq = pyo.Var(m.L, m.T, within=pyo.NonNegativeReals)
    m.v = pyo.Var(m.B, m.T, bounds=(dd.v_min_pu**2, dd.v_max_pu**2), initialize=1.0)
    m.P0 = pyo.Var(m.T, bounds=(-dd.substation_p_max_mw, dd.substation_p_max_mw))
    m.Q0 = pyo.Var(m.T, bounds=(-dd.substation_p_max_mw, dd.substation_p_max_mw))
    m.pm = pyo.Var(m.M, m.T, bounds=lambda _, mg, t: (-dd.mg_p_max_mw[mg], dd.mg_p_max_mw[mg]))
    m.pv = pyo.Var(m.PV, m.T, within=pyo.NonNegativeReals)
    if binary:
        m.alpha = pyo.Var(m.L, m.T, within=pyo.Binary)
        m.sw = pyo.Var(m.L, m.T, within=pyo.NonNegativeReals)
        m.beta = pyo.Var(m.L, m.T, [0, 1], bounds=(0, 1))  # 0: from is parent, 1: to is parent


def state(m: pyo.Block, line: int, t: int):
    """Switch state: the binary variable, or the fixed parameter."""
    return m.alpha[line, t] if hasattr(m, "alpha") else m.alpha_fixed[line, t]


def ell(m: pyo.Block, line: int, t: int):
    return m.lp[line, t] + m.lq[line, t]


# --- constraints -------------------------------------------------------------------------
def declare_loss_cuts(m: pyo.Block, dd: DSOData) -> None:
    """``lp >= P^2 / v``, ``lq >= Q^2 / v`` (v: the from bus's squared voltage, a variable)
    by tangent cuts, first placed for flows at the base-case voltage ``m.v_hat``; the
    empty list ``m.loss_refine`` takes the cuts of :mod:`controllers.loss_cuts` at solutions.
    """
    frm = {b.ieee: b.from_bus for b in dd.branches}
    s_max = {b.ieee: b.s_max_pu for b in dd.branches}
    blocks.declare_loss_cuts(
        m,
        s_max,
        lambda line: pyo.value(m.v_hat[frm[line]]),
        m.lp,
        m.lq,
        v_from=lambda line, t: m.v[frm[line], t],
    )
    m.loss_refine = pyo.ConstraintList()


def declare_balance(m: pyo.Block, dd: DSOData) -> None:
    """DistFlow balance: inflow less its loss at the receiving end, minus outflow, plus the
    substation at the root, equals the withdrawal (load - PV + microgrid import)."""
    br = {b.ieee: b for b in dd.branches}
    mg_at = {bus: [mg for mg, b in dd.mg_bus.items() if b == bus] for bus in dd.buses}
    pv_at = {bus: [pv for pv, b in dd.pv_bus.items() if b == bus] for bus in dd.buses}
    inc = blocks.Incidence.of(dd.branches, dd.buses)

    def balance(flow, loss_coef, root, withdrawal):
        def rule(_, bus, t):
            inflow = sum(
                flow[ln, t] - getattr(br[ln], loss_coef) * ell(m, ln, t) for ln in inc.into[bus]
            )
            net_inflow = inflow - sum(flow[ln, t] for ln in inc.out_of[bus])
            if bus == dd.root:
                return root[t] + net_inflow == withdrawal(bus, t)
            return net_inflow == withdrawal(bus, t)

        return rule

    def p_out(bus, t):
        pv = sum(m.pv[p, t] for p in pv_at[bus])
        return m.load_p[bus, t] - pv + sum(m.pm[g, t] for g in mg_at[bus])

    def q_out(bus, t):
        return m.load_q[bus, t] + sum(m.mg_q[g, t] for g in mg_at[bus])

    m.balance_p = pyo.Constraint(m.B, m.T, rule=balance(m.P, "r_pu", m.P0, p_out))
    m.balance_q = pyo.Constraint(m.B, m.T, rule=balance(m.Q, "x_pu", m.Q0, q_out))


def voltage_big_m(dd: DSOData) -> float:
    """Big-M of the voltage drop: an open branch carries no P, Q or current (flow and
    current limits), so its drop term is v_j - v_i, within +-(v_max^2 - v_min^2)."""
    return min(BIG_M_VOLTAGE, dd.v_max_pu**2 - dd.v_min_pu**2)


def declare_voltage(m: pyo.Block, dd: DSOData) -> None:
    blocks.declare_voltage_drop(
        m,
        dd.branches,
        lambda ln, t: state(m, ln, t),
        voltage_big_m(dd),
        m.L,
        m.T,
        ell=lambda ln, t: ell(m, ln, t),
    )
    for t in m.T:
        m.v[dd.root, t].fix(dd.v_root_pu**2)


def declare_limits(m: pyo.Block, dd: DSOData) -> None:
    br = {b.ieee: b for b in dd.branches}
    s_max = {ln: b.s_max_pu for ln, b in br.items()}
    blocks.declare_flow_limits(m, s_max, lambda ln, t: state(m, ln, t), m.L, m.T)
    m.current = pyo.Constraint(
        m.L, m.T, rule=lambda _, ln, t: ell(m, ln, t) <= br[ln].i2_max_pu * state(m, ln, t)
    )
    m.pv_cap = pyo.Constraint(m.PV, m.T, rule=lambda _, p, t: m.pv[p, t] <= m.pv_avail[p, t])


def declare_radiality(m: pyo.Block, dd: DSOData) -> None:
    """Parent-child spanning tree: each non-root bus has exactly one parent on a closed branch."""
    br = {b.ieee: b for b in dd.branches}
    m.tree_branch = pyo.Constraint(
        m.L, m.T, rule=lambda _, ln, t: m.beta[ln, t, 0] + m.beta[ln, t, 1] == m.alpha[ln, t]
    )

    def one_parent(_, bus, t):
        if bus == dd.root:
            return pyo.Constraint.Skip
        as_child = [m.beta[ln, t, 0] for ln in m.L if br[ln].to_bus == bus]
        as_child += [m.beta[ln, t, 1] for ln in m.L if br[ln].from_bus == bus]
        return sum(as_child) == 1

    m.one_parent = pyo.Constraint(m.B, m.T, rule=one_parent)

    def root_no_parent(_, ln, t):
        """The root is nobody's child: a branch at the root points away from it."""
        if dd.root not in (br[ln].from_bus, br[ln].to_bus):
            return pyo.Constraint.Skip
        return m.beta[ln, t, 1 if br[ln].from_bus == dd.root else 0] == 0

    m.root_no_parent = pyo.Constraint(m.L, m.T, rule=root_no_parent)


def declare_switching(m: pyo.Block) -> None:
    def previous(line, t):
        return m.alpha_initial[line] if t == 0 else m.alpha[line, t - 1]

    blocks.declare_switch_actions(m, previous, m.switch_budget)


def declare_costs(m: pyo.Block, dd: DSOData) -> None:
    """Cost terms (CNY) as expressions; ``m.cost`` is their sum."""
    r = {b.ieee: b.r_pu for b in dd.branches}
    m.loss_cost = pyo.Expression(
        expr=dd.loss_cost * m.dt_h * pyo.quicksum(r[ln] * ell(m, ln, t) for ln in m.L for t in m.T)
    )
    m.curtail_cost = pyo.Expression(
        expr=dd.curtail_cost
        * m.dt_h
        * pyo.quicksum(m.pv_avail[p, t] - m.pv[p, t] for p in m.PV for t in m.T)
    )
    m.switch_cost = pyo.Expression(
        expr=dd.switch_cost * pyo.quicksum(m.sw[ln, t] for ln in m.L for t in m.T)
        if hasattr(m, "sw")
        else 0.0
    )
    m.cost = pyo.Expression(expr=m.loss_cost + m.curtail_cost + m.switch_cost)


def add_dso(m: pyo.Block, dd: DSOData, n_periods: int, binary: bool = False) -> pyo.Block:
    """Populate block ``m`` with the DSO model (no objective: the caller composes it)."""
    declare_sets(m, dd, n_periods)
    declare_params(m, dd)
    declare_vars(m, dd, binary)
    declare_loss_cuts(m, dd)
    declare_balance(m, dd)
    declare_voltage(m, dd)
    declare_limits(m, dd)
    if binary:
        declare_radiality(m, dd)
        declare_switching(m)
    declare_costs(m, dd)
    return m


def build_dso_model(dd: DSOData, n_periods: int, binary: bool = False) -> pyo.ConcreteModel:
    """DSO model minimising its own cost (with fixed microgrid exchanges, see ``pm``)."""
    m = add_dso(pyo.ConcreteModel(name="dso"), dd, n_periods, binary)
    m.obj = pyo.Objective(expr=m.cost)
    return m


# --- data into parameters ----------------------------------------------------------------
def set_topology(m: pyo.Block, closed: dict[int, list[bool]] | dict[int, bool]) -> None:
    """Fix the switch states (per branch: one state for all periods, or one per period)."""
    for line, value in closed.items():
        for t in m.T:
            state_t = value[t] if isinstance(value, list | tuple | np.ndarray) else value
            m.alpha_fixed[line, t] = float(bool(state_t))


def set_initial_topology(m: pyo.Block, closed: dict[int, bool]) -> None:
    for line, value in closed.items():
        m.alpha_initial[line] = float(bool(value))


def set_loads(m: pyo.Block, dd: DSOData, scale: np.ndarray | dict[int, np.ndarray]) -> None:
    """DSO demand per period: nominal load times a per-unit scale (one array, or per bus)."""
    for bus in m.B:
        s = scale[bus] if isinstance(scale, dict) else scale
        for t in m.T:
            m.load_p[bus, t] = dd.load_p_nom_mw.get(bus, 0.0) * float(s[t])
            m.load_q[bus, t] = dd.load_q_nom_mvar.get(bus, 0.0) * float(s[t])


def set_pv(m: pyo.Block, pv_mw: dict[str, np.ndarray]) -> None:
    for name, values in pv_mw.items():
        for t in m.T:
            m.pv_avail[name, t] = float(values[t])


def closed_branches(m: pyo.Block, t: int) -> dict[int, bool]:
    """Switch states of period t from a solved model (binary or fixed)."""
    return {int(ln): pyo.value(state(m, ln, t)) > 0.5 for ln in m.L}


def set_loads_mw(m: pyo.Block, dd: DSOData, p_mw: dict[int, np.ndarray]) -> None:
    """DSO demand per bus (MW) per period; Q keeps each load's nominal power factor."""
    for bus in m.B:
        ratio = dd.load_q_per_p(bus)
        values = p_mw.get(bus)
        for t in m.T:
            p = float(values[t]) if values is not None else 0.0
            m.load_p[bus, t] = p
            m.load_q[bus, t] = p * ratio


def set_mg_q(m: pyo.Block, q_mvar: dict[str, np.ndarray]) -> None:
    """Reactive import of each microgrid per period (a boundary quantity they report)."""
    for name, values in q_mvar.items():
        for t in m.T:
            m.mg_q[name, t] = float(values[t])
