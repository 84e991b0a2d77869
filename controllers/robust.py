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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from mgcosim.controllers import blocks
from mgcosim.controllers.dso import DSOData
from mgcosim.controllers.solve import persistent_highs, solve_optimal
from mgcosim.networks.params import DATA_DIR, MessParams, NetworkData, load_mess_params, q_per_p
from mgcosim.networks.storage import energy_change_mwh

PROFILES_FILE = DATA_DIR / "profiles_default.csv"
TIERS = (1, 2, 3)


class RobustInputError(ValueError):
    """Inputs of the robust model that do not fit the network or each other."""


# --- data ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    """The forecast extreme event: damaged branches (open) and whether the main grid stays."""

    damaged_branches: frozenset[int]
    main_grid_available: bool


# Seed 003's event on this network (branches 12: 12-13 and 22: 3-23 damaged, main grid lost)
# with tie 37 (25-29) damaged too: the microgrids (buses 2, 11, 27), the PV and the MESS are
# the only sources, and the lateral 23-25 (two 0.42 MW tier-2 loads and PV_b25) can then be
# served only by MESS placed inside it, so where the units go matters.
DEFAULT_EVENT = Event(frozenset({12, 22, 37}), main_grid_available=False)


@dataclass(frozen=True)
class RobustCase:
    """Everything the models need: network, event, horizon (arrays per period, MW)."""

    dd: DSOData  # buses, branches, root, voltage band, switching cost, substation limit
    mess: MessParams
    event: Event
    dt_h: float
    demand_mw: dict[int, np.ndarray]  # per IEEE bus
    demand_mvar: dict[int, np.ndarray]
    tier: dict[int, int]  # per IEEE bus
    pv_forecast_mw: dict[str, np.ndarray]
    pv_q_ratio: dict[str, float]  # |q| <= ratio * p
    dg_p_max_mw: dict[str, float]  # per microgrid (at dd.mg_bus)
    dg_q_max_mvar: dict[str, float]
    switchable: frozenset[int]  # branches that may leave their normal state

    @property
    def n_periods(self) -> int:
        return len(next(iter(self.demand_mw.values())))

    @property
    def pv_dev_mw(self) -> dict[str, np.ndarray]:
        return {k: self.mess.pv_dev_frac * v for k, v in self.pv_forecast_mw.items()}

    @property
    def budget(self) -> int:
        return self.mess.pv_budget_per_period

    def shed_cost(self, bus: int) -> float:
        """CNY per MWh of load shed at ``bus``."""
        return self.mess.shed_cost_cny_per_mwh[self.tier.get(bus, 3)]

    def normal_closed(self, line: int) -> bool:
        return not next(b.is_tie for b in self.dd.branches if b.ieee == line)


def hourly_shapes(
    start_hour: float, n_periods: int, profiles: pd.DataFrame | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``load_pu`` and ``pv_pu`` at start_hour, start_hour + 1, ... (periodic over 24 h,
    interpolated between the table's hours; ``profiles_default.csv`` unless given)."""
    table = profiles if profiles is not None else pd.read_csv(PROFILES_FILE)
    hours = start_hour + np.arange(n_periods, dtype=float)
    load_pu = np.interp(hours, table["hour"], table["load_pu"], period=24.0)
    pv_pu = np.interp(hours, table["hour"], table["pv_pu"], period=24.0)
    return load_pu, pv_pu


def robust_case(
    dd: DSOData,
    data: NetworkData,
    mess: MessParams | None = None,
    event: Event = DEFAULT_EVENT,
    *,
    start_hour: float = 10.0,
    n_periods: int = 4,
    profiles: pd.DataFrame | None = None,
    switchable: frozenset[int] | None = None,
) -> RobustCase:
    """The IEEE 33 case: nominal loads and PV ratings times the hourly shapes from
    ``start_hour`` (``profiles_default.csv`` unless ``profiles`` is given), hourly periods."""
    mess = mess or load_mess_params()
    load_pu, pv_pu = hourly_shapes(start_hour, n_periods, profiles)
    case = RobustCase(
        dd=dd,
        mess=mess,
        event=event,
        dt_h=1.0,
        demand_mw={b: p * load_pu for b, p in dd.load_p_nom_mw.items()},
        demand_mvar={b: q * load_pu for b, q in dd.load_q_nom_mvar.items()},
        tier={b: data.tier_of(b) for b in dd.buses},
        pv_forecast_mw={pv.name: pv.p_rated_mw * pv_pu for pv in data.pv},
        pv_q_ratio={pv.name: q_per_p(pv.pf_min) for pv in data.pv},
        dg_p_max_mw={mg.name: mg.mt_p_max_mw for mg in data.microgrids},
        dg_q_max_mvar={mg.name: mg.pcc_p_max_mw for mg in data.microgrids},
        switchable=frozenset(b.ieee for b in dd.branches) if switchable is None else switchable,
    )
    validate_case(case)
    return case


def validate_case(case: RobustCase) -> None:
    """Raise :class:`RobustInputError` on the first input that does not fit."""
    lines = {b.ieee for b in case.dd.branches}
    for name, numbers in (
        ("damaged_branches", case.event.damaged_branches),
        ("switchable", case.switchable),
    ):
        if unknown := sorted(set(numbers) - lines):
            raise RobustInputError(f"{name}: unknown IEEE branches {unknown}")
    if unknown := sorted(set(case.mess.candidate_buses_ieee) - set(case.dd.buses)):
        raise RobustInputError(f"candidate_buses_ieee: unknown IEEE buses {unknown}")
    if len(set(case.mess.candidate_buses_ieee)) != len(case.mess.candidate_buses_ieee):
        raise RobustInputError("candidate_buses_ieee: a bus is listed twice")
    if set(case.dg_p_max_mw) != set(case.dd.mg_bus) or set(case.pv_forecast_mw) - set(
        case.dd.pv_bus
    ):
        raise RobustInputError("DG and PV names must be those of the network data (dd)")
    if not case.demand_mw or case.dt_h <= 0 or case.n_periods < 1:
        raise RobustInputError(f"dt_h {case.dt_h}, {case.n_periods} periods: need > 0, >= 1")
    for name, values in [*case.demand_mw.items(), *case.pv_forecast_mw.items()]:
        if len(values) != case.n_periods or np.any(np.asarray(values) < 0):
            raise RobustInputError(f"{name}: need {case.n_periods} values >= 0")


# --- first-stage decisions -----------------------------------------------------------------
@dataclass(frozen=True)
class FirstStage:
    """A here-and-now decision: placement, switch states and the islands they make."""

    mess_buses: frozenset[int]
    closed_branches: frozenset[int]
    live_branches: frozenset[int]  # closed and energised
    energised_buses: frozenset[int]
    source_buses: frozenset[int]  # grid-forming: substation, DG, MESS (one per island)
    placement_cost_cny: float
    switch_actions: int
    switch_cost_cny: float

    @property
    def cost_cny(self) -> float:
        return self.placement_cost_cny + self.switch_cost_cny


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


def declare_first_stage(m: pyo.Block, case: RobustCase) -> None:
    declare_first_stage_vars(m, case)
    declare_fleet(m, case)
    declare_sources(m, case)
    declare_first_stage_cost(m, case)


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


def declare_flow_limits(b: pyo.Block, case: RobustCase, fs: pyo.Block) -> None:
    s_max = {br.ieee: br.s_max_pu for br in case.dd.branches}
    blocks.declare_flow_limits(b, s_max, lambda ln, t: fs.live[ln], b.model().L, b.model().T)


def declare_voltage(b: pyo.Block, case: RobustCase, fs: pyo.Block) -> None:
    s, dd = b.model(), case.dd
    big_m = dd.v_max_pu**2 + 0.5  # > any |v_j - v_i + 2 (r P + x Q)| on a dead branch

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
    b.dg_p_on = pyo.Constraint(
        s.G, s.T, rule=lambda _, g, t: b.pdg[g, t] <= p_max[g] * fs.energised[bus[g]]
    )
    blocks.declare_symmetric_limit(
        b,
        "dg_q",
        (s.G, s.T),
        lambda g, t: b.qdg[g, t],
        lambda g, t: q_max[g] * fs.energised[bus[g]],
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
    declare_flow_limits(b, case, fs)
    declare_voltage(b, case, fs)
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
    declare_first_stage(m, case)
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
    for ln, p in m.live.items():
        p.set_value(float(ln in fs.live_branches))
    for x, p in m.energised.items():
        p.set_value(float(x in fs.energised_buses))
    for c, p in m.placed.items():
        p.set_value(float(c in fs.mess_buses))


def pv_realisation(case: RobustCase, u: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PV available per unit and period for deviation indicators u (0 .. 1)."""
    dev = case.pv_dev_mw
    return {
        k: f - dev[k] * np.asarray(u.get(k, 0.0), float) for k, f in case.pv_forecast_mw.items()
    }


def first_stage_from(m: pyo.ConcreteModel, case: RobustCase) -> FirstStage:
    """The first stage of a solved master model."""

    def on(var) -> bool:
        return pyo.value(var) > 0.5

    closed = frozenset(int(ln) for ln in m.L if on(m.alpha[ln]))
    mess = frozenset(int(c) for c in m.C if on(m.placed[c]))
    sources = {int(c) for c in m.C if on(m.sigma_mess[c])}
    sources |= {case.dd.mg_bus[g] for g in m.G if on(m.sigma_dg[g])}
    if case.event.main_grid_available:
        sources.add(case.dd.root)
    actions = sum(
        (ln in closed) != case.normal_closed(ln)
        for ln in m.L
        if ln not in case.event.damaged_branches
    )
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
        m, case = self.model, self.case
        set_first_stage(m, fs)
        set_pv_avail(m.rec, pv_mw)
        cost = solve_optimal(m, self.solver, "MESS recourse").objective
        r = m.rec
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
