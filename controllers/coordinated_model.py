"""The models of the coordinated restoration by projection (seed 003); none is solved here.

One window of ``window_h`` hours at constant power; per unit with S_base = 1 MVA; tie-line
power (P, Q) > 0 when the microgrid imports.

DSO model (the upper level of every strategy), after :mod:`controllers.restoration`: switch
states alpha (faulted branches open), actions sw >= |alpha - alpha^0|, bus energisation,
live branches, single-commodity-flow radiality with islands around grid-forming sources
(the substation when available, the DSO's black-start generators, grid-forming microgrids),
LinDistFlow on live branches, binary pickup of each DSO load, PV and generators only on
energised buses, and at a microgrid's bus its exchange (P_m, Q_m), zero when the bus is
dead, within the PCC band its internal limits were made robust to. Objective (weighted MW,
maximised): sum_d w(tier d) p_d x_d + the microgrids' term - ``switch_penalty`` sum sw -
``exchange_penalty`` sum_m (|P_m| + |Q_m|); the penalties only break ties.

Virtual node (seed 003, section 1): sources g_m (projected range), reactive h_m, served tier
loads s_mj, non-negative virtual flows y_int (own sources to own loads), y_ext (DSO to own
loads), export and import:

    g_m = sum_j y_int_mj + export_m     import_m = sum_j y_ext_mj    P_m = import_m - export_m
    s_mj = y_int_mj + y_ext_mj           Q_m + h_m = tan(phi_m) sum_j s_mj
    a_k . (P_m, Q_m) <= b_k for every facet k of the polygon.

The microgrids' term is sum_m sum_j w_j (theta_mj y_int_mj + y_ext_mj), theta >= 1 the
preference for own loads from own sources (theta = 1: the central objective).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyomo.environ as pyo

from mgcosim.controllers import blocks
from mgcosim.controllers.dso import DSOData
from mgcosim.controllers.projection_data import (
    MicrogridConditions,
    VirtualNodeOffer,
    check_preference,
)
from mgcosim.controllers.projection_model import add_microgrid, build_microgrid_model
from mgcosim.networks.microgrid_internal import TIERS, MicrogridNetwork
from mgcosim.networks.params import q_per_p

SWITCH_PENALTY = 1e-4  # weighted MW per switching action: a tie-breaker only
EXCHANGE_PENALTY = 1e-5  # weighted MW per MW or Mvar through a tie line: a tie-breaker only


@dataclass(frozen=True)
class DSOGenerator:
    """A dispatchable DSO-owned unit (black-start capable when ``grid_forming``)."""

    name: str
    bus_ieee: int
    p_max_mw: float
    q_max_mvar: float
    grid_forming: bool


@dataclass(frozen=True)
class DSOEvent:
    """The DSO's side of one restoration event (nothing inside the microgrids)."""

    dso: DSOData
    faulted: frozenset[int]  # IEEE branch numbers
    main_grid_available: bool
    initial_closed: dict[int, bool]
    demand_mw: dict[int, float]  # per IEEE bus
    demand_mvar: dict[int, float]
    pv_mw: dict[str, float]  # available
    pv_pf_min: dict[str, float]
    generators: tuple[DSOGenerator, ...]
    tier: dict[int, int]  # per IEEE bus
    tier_weight: dict[int, float]
    window_h: float
    switch_penalty: float = SWITCH_PENALTY
    exchange_penalty: float = EXCHANGE_PENALTY

    @property
    def tier1_buses(self) -> tuple[int, ...]:
        return tuple(sorted(b for b, p in self.demand_mw.items() if p > 0 and self.tier[b] == 1))


# --- DSO model: sets, variables, constraints -------------------------------------------------
@dataclass(frozen=True)
class TiePort:
    """What the DSO model needs of a participating microgrid at its IEEE bus."""

    name: str
    bus_ieee: int
    grid_forming: bool
    pcc_v_band_pu: tuple[float, float]
    limit_mw: float  # bound on |P|, |Q| (zero exchange when the bus is dead)


def port_of(mg: VirtualNodeOffer | MicrogridNetwork, limit_mw: float) -> TiePort:
    return TiePort(mg.name, mg.bus_ieee, mg.grid_forming, mg.pcc_v_band_pu, limit_mw)


def declare_dso_sets(m: pyo.Block, ev: DSOEvent, ports: Mapping[str, TiePort]) -> None:
    dd = ev.dso
    m.B = pyo.Set(initialize=dd.buses)
    m.L = pyo.Set(initialize=[b.ieee for b in dd.branches])
    m.D = pyo.Set(initialize=sorted(b for b, p in ev.demand_mw.items() if p > 0))
    m.PV = pyo.Set(initialize=sorted(ev.pv_mw))
    m.G = pyo.Set(initialize=[g.name for g in ev.generators])
    m.M = pyo.Set(initialize=sorted(ports))
    sources = [s.name for s in (*ev.generators, *ports.values()) if s.grid_forming]
    m.S = pyo.Set(initialize=sorted(sources))  # grid-forming candidates besides the substation


def declare_dso_vars(m: pyo.Block, ev: DSOEvent) -> None:
    dd = ev.dso
    s_max = {b.ieee: b.s_max_pu for b in dd.branches}
    gen = {g.name: g for g in ev.generators}
    m.alpha = pyo.Var(m.L, within=pyo.Binary)
    m.live = pyo.Var(m.L, bounds=(0, 1))
    m.sw = pyo.Var(m.L, within=pyo.NonNegativeReals)
    m.energised = pyo.Var(m.B, within=pyo.Binary)
    m.sigma = pyo.Var(m.S, within=pyo.Binary)
    m.P = pyo.Var(m.L, bounds=lambda _, ln: (-s_max[ln], s_max[ln]))
    m.Q = pyo.Var(m.L, bounds=lambda _, ln: (-s_max[ln], s_max[ln]))
    m.v = pyo.Var(m.B, bounds=(0.0, dd.v_max_pu**2), initialize=1.0)
    p0_max = dd.substation_p_max_mw if ev.main_grid_available else 0.0
    m.P0 = pyo.Var(bounds=(-p0_max, p0_max))
    m.Q0 = pyo.Var(bounds=(-p0_max, p0_max))
    m.x = pyo.Var(m.D, within=pyo.Binary)
    m.pv = pyo.Var(m.PV, within=pyo.NonNegativeReals)
    m.qpv = pyo.Var(m.PV)
    m.dg_p = pyo.Var(m.G, within=pyo.NonNegativeReals)
    m.dg_q = pyo.Var(m.G, bounds=lambda _, g: (-gen[g].q_max_mvar, gen[g].q_max_mvar))
    m.tie_p = pyo.Var(m.M)  # microgrid import (MW)
    m.tie_q = pyo.Var(m.M)
    for ln in ev.faulted:
        m.alpha[ln].fix(0)
    if ev.main_grid_available:
        m.energised[dd.root].fix(1)
        m.v[dd.root].fix(dd.v_root_pu**2)


def declare_radiality(m: pyo.Block, ev: DSOEvent, ports: Mapping[str, TiePort]) -> None:
    """Single-commodity flow with virtual sources: islands, one source each, no loop."""
    where = {s.name: s.bus_ieee for s in (*ev.generators, *ports.values())}
    dd, n_bus = ev.dso, len(ev.dso.buses)
    shared = {b for b in m.B if sum(w == b for w in where.values()) + (b == dd.root) > 1}
    blocks.declare_commodity_vars(m, n_bus)
    blocks.declare_live_branches(m, dd.branches)
    flags = {"source_energised": (m.sigma, m.S, where)}

    def substation(bus):
        return int(bus == dd.root and ev.main_grid_available)

    sources = blocks.declare_grid_forming(m, flags, sorted(shared), substation)
    blocks.declare_commodity_flow(m, dd.branches, n_bus, sources)


def declare_power_flow(m: pyo.Block, ev: DSOEvent, ports: Mapping[str, TiePort]) -> None:
    """LinDistFlow (lossless) on live branches; voltage band on energised buses."""
    dd = ev.dso
    big_m = dd.v_max_pu**2 + 0.5
    at = {b: [g.name for g in ev.generators if g.bus_ieee == b] for b in dd.buses}
    pv_at = {b: [p for p in m.PV if dd.pv_bus[p] == b] for b in dd.buses}
    mg_at = {b: [g for g in m.M if ports[g].bus_ieee == b] for b in dd.buses}
    inc = blocks.Incidence.of(dd.branches, dd.buses)

    def balance(name, flow, pv, dg, root, demand, tie):
        def supply(bus):
            own = sum(pv[p] for p in pv_at[bus]) + sum(dg[g] for g in at[bus])
            return own + (root if bus == dd.root else 0.0)

        def withdrawal(bus):
            load = demand[bus] * m.x[bus] if bus in m.D else 0.0
            return load + sum(tie[g] for g in mg_at[bus])

        blocks.declare_bus_balance(m, name, inc, flow, supply, withdrawal, m.B)

    balance("balance_p", m.P, m.pv, m.dg_p, m.P0, ev.demand_mw, m.tie_p)
    balance("balance_q", m.Q, m.qpv, m.dg_q, m.Q0, ev.demand_mvar, m.tie_q)
    blocks.declare_voltage_drop(m, dd.branches, lambda ln: m.live[ln], big_m, m.L)
    m.v_min = pyo.Constraint(m.B, rule=lambda _, b: m.v[b] >= dd.v_min_pu**2 * m.energised[b])
    s_max = {b.ieee: b.s_max_pu for b in dd.branches}
    blocks.declare_flow_limits(m, s_max, lambda ln: m.live[ln], m.L)


def declare_units(m: pyo.Block, ev: DSOEvent) -> None:
    """PV and DSO generators produce only on an energised bus."""
    dd = ev.dso
    gen = {g.name: g for g in ev.generators}
    tan_pv = {p: q_per_p(ev.pv_pf_min.get(p, 1.0)) for p in m.PV}
    pv_on = {p: m.energised[dd.pv_bus[p]] for p in m.PV}
    m.pv_cap = pyo.Constraint(m.PV, rule=lambda _, p: m.pv[p] <= ev.pv_mw[p] * pv_on[p])
    blocks.declare_pv_power_factor(m, tan_pv)
    dg_on = {g: m.energised[gen[g].bus_ieee] for g in m.G}
    m.dg_cap = pyo.Constraint(m.G, rule=lambda _, g: m.dg_p[g] <= gen[g].p_max_mw * dg_on[g])
    blocks.declare_symmetric_limit(
        m, "dg_q", [m.G], m.dg_q.__getitem__, lambda g: gen[g].q_max_mvar * dg_on[g]
    )


def declare_tie_lines(m: pyo.Block, ports: Mapping[str, TiePort]) -> None:
    """Exchange only with an energised bus; the PCC band on an energised microgrid bus."""
    lim = {g: ports[g].limit_mw for g in m.M}
    bus = {g: ports[g].bus_ieee for g in m.M}
    band = {g: ports[g].pcc_v_band_pu for g in m.M}
    for name, v in (("p", m.tie_p), ("q", m.tie_q)):
        blocks.declare_symmetric_limit(
            m, f"tie_{name}", [m.M], v.__getitem__, lambda g: lim[g] * m.energised[bus[g]]
        )
    m.tie_abs_p = pyo.Var(m.M, within=pyo.NonNegativeReals)
    m.tie_abs_q = pyo.Var(m.M, within=pyo.NonNegativeReals)
    for name, v, size in (("p", m.tie_p, m.tie_abs_p), ("q", m.tie_q, m.tie_abs_q)):
        blocks.declare_symmetric_limit(m, f"tie_abs_{name}", [m.M], v.__getitem__, size.__getitem__)
    m.exchange = pyo.Expression(expr=pyo.quicksum(m.tie_abs_p[g] + m.tie_abs_q[g] for g in m.M))
    m.pcc_v_min = pyo.Constraint(
        m.M, rule=lambda _, g: m.v[bus[g]] >= band[g][0] ** 2 * m.energised[bus[g]]
    )
    m.pcc_v_max = pyo.Constraint(m.M, rule=lambda _, g: m.v[bus[g]] <= band[g][1] ** 2)


def declare_pickup_and_switching(m: pyo.Block, ev: DSOEvent) -> None:
    blocks.declare_load_pickup(m)

    def before(ln):
        return 0.0 if ln in ev.faulted else float(bool(ev.initial_closed.get(ln, False)))

    blocks.declare_symmetric_limit(
        m, "sw", [m.L], lambda ln: m.alpha[ln] - before(ln), m.sw.__getitem__
    )


def declare_dso_value(m: pyo.Block, ev: DSOEvent) -> None:
    """Weighted restored DSO load (MW) and the switching count."""
    w = {b: ev.tier_weight[ev.tier[b]] for b in m.D}
    m.dso_value = pyo.Expression(expr=pyo.quicksum(w[b] * ev.demand_mw[b] * m.x[b] for b in m.D))
    m.switch_actions = pyo.Expression(expr=pyo.quicksum(m.sw[ln] for ln in m.L))


def add_dso_restoration(m: pyo.Block, ev: DSOEvent, ports: Mapping[str, TiePort]) -> pyo.Block:
    """Populate ``m`` with the DSO model (no objective): ``tie_p``/``tie_q`` per port."""
    declare_dso_sets(m, ev, ports)
    declare_dso_vars(m, ev)
    declare_radiality(m, ev, ports)
    declare_power_flow(m, ev, ports)
    declare_units(m, ev)
    declare_tie_lines(m, ports)
    declare_pickup_and_switching(m, ev)
    declare_dso_value(m, ev)
    return m


def declare_objective(m: pyo.Block, ev: DSOEvent) -> None:
    m.obj = pyo.Objective(  # minimised: negated value plus the tie-breaking penalties
        expr=-(m.dso_value + m.mg_value)
        + ev.switch_penalty * m.switch_actions
        + ev.exchange_penalty * m.exchange
    )


# --- (c) the virtual nodes ------------------------------------------------------------------
def declare_virtual_nodes(
    m: pyo.Block, tier_weight: Mapping[int, float], offers: Mapping[str, VirtualNodeOffer]
) -> None:
    """Polygon, aggregated sources, tier loads and the virtual flow of each microgrid."""
    o = offers
    m.VT = pyo.Set(initialize=TIERS)
    m.FACET = pyo.Set(
        dimen=2, initialize=[(g, k) for g in sorted(o) for k in range(len(o[g].hull.offsets))]
    )
    m.vn_s = pyo.Var(m.M, m.VT, bounds=lambda _, g, j: (0.0, o[g].tier_max_mw[j]))
    m.vn_g = pyo.Var(m.M, bounds=lambda _, g: o[g].source_p_mw)
    m.vn_h = pyo.Var(m.M, bounds=lambda _, g: o[g].source_q_mvar)
    m.y_int = pyo.Var(m.M, m.VT, within=pyo.NonNegativeReals)
    m.y_ext = pyo.Var(m.M, m.VT, within=pyo.NonNegativeReals)
    m.vn_export = pyo.Var(m.M, within=pyo.NonNegativeReals)
    m.vn_import = pyo.Var(m.M, within=pyo.NonNegativeReals)

    def facet(_, g, k):  # a_k . (P, Q) <= b_k
        (a_p, a_q), b = o[g].hull.normals[k], o[g].hull.offsets[k]
        return a_p * m.tie_p[g] + a_q * m.tie_q[g] <= b

    def over_tiers(var, g):
        return sum(var[g, j] for j in m.VT)

    m.vn_polygon = pyo.Constraint(m.FACET, rule=facet)
    m.vn_own_load = pyo.Constraint(
        m.M, m.VT, rule=lambda _, g, j: m.vn_s[g, j] == m.y_int[g, j] + m.y_ext[g, j]
    )
    m.vn_sources = pyo.Constraint(
        m.M, rule=lambda _, g: m.vn_g[g] == over_tiers(m.y_int, g) + m.vn_export[g]
    )
    m.vn_imports = pyo.Constraint(m.M, rule=lambda _, g: m.vn_import[g] == over_tiers(m.y_ext, g))
    m.vn_tie = pyo.Constraint(m.M, rule=lambda _, g: m.tie_p[g] == m.vn_import[g] - m.vn_export[g])
    m.vn_reactive = pyo.Constraint(
        m.M,
        rule=lambda _, g: m.tie_q[g] + m.vn_h[g] == o[g].load_q_per_p * over_tiers(m.vn_s, g),
    )
    w = tier_weight
    m.mg_value = pyo.Expression(
        expr=pyo.quicksum(
            w[j] * (o[g].preference[j] * m.y_int[g, j] + m.y_ext[g, j]) for g in m.M for j in m.VT
        )
    )
    m.mg_promised = pyo.Expression(  # with the true weights (no preference)
        m.M, rule=lambda _, g: pyo.quicksum(w[j] * m.vn_s[g, j] for j in m.VT)
    )


def build_upper_model(event: DSOEvent, offers: Mapping[str, VirtualNodeOffer]) -> pyo.ConcreteModel:
    """(c) The DSO's model from the microgrids' offers only; with no offer, (a)'s DSO model."""
    for offer in offers.values():
        check_preference(offer.preference)
    ports = {g: port_of(o, max(map(abs, o.hull.box()))) for g, o in offers.items()}
    m = add_dso_restoration(pyo.ConcreteModel(name="coordinated_upper"), event, ports)
    if offers:
        declare_virtual_nodes(m, event.tier_weight, offers)
    else:
        m.mg_value = pyo.Expression(expr=0.0)
    declare_objective(m, event)
    return m


def build_virtual_node_model(
    offer: VirtualNodeOffer, tier_weight: Mapping[int, float], p_mw: float, q_mvar: float
) -> pyo.ConcreteModel:
    """What the DSO believes microgrid ``offer`` restores at the tie-line point (P, Q)."""
    m = pyo.ConcreteModel(name=f"{offer.name}_virtual_node")
    m.M = pyo.Set(initialize=[offer.name])
    m.tie_p = pyo.Var(m.M)
    m.tie_q = pyo.Var(m.M)
    m.tie_p[offer.name].fix(p_mw)
    m.tie_q[offer.name].fix(q_mvar)
    declare_virtual_nodes(m, tier_weight, {offer.name: offer})
    m.obj = pyo.Objective(expr=-m.mg_value)
    return m


# --- (b) central dispatch -----------------------------------------------------------------
def build_central_model(
    event: DSOEvent,
    microgrids: Mapping[str, MicrogridNetwork],
    conditions: Mapping[str, MicrogridConditions],
) -> pyo.ConcreteModel:
    """(b) The DSO network and every microgrid's full internal model in one MILP."""
    ports = {g: port_of(n, n.params.pcc_p_max_mw) for g, n in microgrids.items()}
    m = add_dso_restoration(pyo.ConcreteModel(name="coordinated_central"), event, ports)
    m.mg = pyo.Block(m.M, rule=lambda b, g: add_microgrid(b, microgrids[g], conditions[g]))
    m.tie_p_link = pyo.Constraint(m.M, rule=lambda _, g: m.tie_p[g] == m.mg[g].tie_p)
    m.tie_q_link = pyo.Constraint(m.M, rule=lambda _, g: m.tie_q[g] == m.mg[g].tie_q)
    m.mg_value = pyo.Expression(expr=pyo.quicksum(m.mg[g].own_value for g in m.M))
    declare_objective(m, event)
    return m


# --- lower level --------------------------------------------------------------------------
def build_lower_model(
    net: MicrogridNetwork, cond: MicrogridConditions, p_mw: float, q_mvar: float
) -> pyo.ConcreteModel:
    """A microgrid's own restoration with the tie-line command (P, Q) fixed."""
    m = build_microgrid_model(net, cond)
    m.tie_p.fix(p_mw)
    m.tie_q.fix(q_mvar)
    m.own_weight = 1.0
    return m
