"""Coordinated restoration of the DSO network with microgrids by projection (seed 003).

One restoration window of ``window_h`` hours at constant power (one period); per unit with
S_base = 1 MVA; tie-line power (P, Q) > 0 when the microgrid imports.

DSO model (the upper level of every strategy), after :mod:`controllers.restoration`: switch
states alpha (faulted branches open), actions sw >= |alpha - alpha^0|, bus energisation,
live branches = alpha energised_from, single-commodity-flow radiality with islands around
grid-forming sources (substation when available, the DSO's black-start generators of
``dso_black_start_generators.csv``, grid-forming microgrids), LinDistFlow on live branches,
binary pickup of each DSO load, PV and generators only on energised buses, and at a
microgrid's bus its exchange (P_m, Q_m), zero when the bus is dead, within the PCC band
its internal limits were made robust to (:mod:`controllers.projection`).

Objective (weighted MW, maximised): sum_d w(tier d) p_d x_d + the microgrids' term -
``switch_penalty`` sum sw - ``exchange_penalty`` sum_m (|P_m| + |Q_m|); the penalties (1e-4,
1e-5) only break ties (the smallest load is worth 0.009).

Strategies: (a) ``no_sharing``: P_m = Q_m = 0, the DSO restores from its own sources, each
microgrid its own loads; (b) ``central``: one MILP with every microgrid's full internal
model (:func:`controllers.projection.add_microgrid`); (c) ``projection``: each microgrid
shares a :class:`VirtualNodeOffer`; the upper level decides topology, DSO loads and
(P_m, Q_m), then each lower level maximises its own load at the fixed (P_m, Q_m).

Virtual node of (c) (seed 003, section 1): sources g_m (projected range), reactive h_m,
served tier loads s_mj, and non-negative virtual flows y_int (own sources to own loads),
y_ext (DSO to own loads), export and import:

    g_m = sum_j y_int_mj + export_m     import_m = sum_j y_ext_mj    P_m = import_m - export_m
    s_mj = y_int_mj + y_ext_mj           Q_m + h_m = tan(phi_m) sum_j s_mj
    a_k . (P_m, Q_m) <= b_k for every facet k of the polygon.

The microgrids' term is sum_m sum_j w_j (theta_mj y_int_mj + y_ext_mj), theta >= 1 the
preference for own loads from own sources; with theta = 1 it is the central objective and
(c) equals (b) whenever the binding internal constraints depend on (P, Q) alone (as in
``networks/data/mg_internal_*.csv``; the tests check it), up to the hull's ``threshold_mw``.
The realised plan of (c) is always feasible for (b); where the internal network binds on
the tier mix, :attr:`StrategyResult.mg_promised_weighted_mw` shows what was promised.

Builders return models and never solve; ``solve_*`` solve them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyomo.environ as pyo

from mgcosim.controllers import blocks
from mgcosim.controllers.dso import DSOData, default_topology, dso_data
from mgcosim.controllers.projection import (
    MicrogridConditions,
    Projection,
    VirtualNodeOffer,
    add_microgrid,
    build_microgrid_model,
    check_preference,
    project_microgrid,
    window_conditions,
)
from mgcosim.controllers.solve import MipLimits, persistent_highs, solve_optimal
from mgcosim.networks.ieee33 import build_ieee33
from mgcosim.networks.microgrid_internal import TIERS, MicrogridNetwork, load_microgrid_networks
from mgcosim.networks.params import (
    AT_LEAST_ZERO,
    DATA_DIR,
    NetworkData,
    ParameterError,
    checked_records,
    load_network_data,
    q_per_p,
)

DSO_DG_FILE = "dso_black_start_generators.csv"
SWITCH_PENALTY = 1e-4  # weighted MW per switching action: a tie-breaker only
EXCHANGE_PENALTY = 1e-5  # weighted MW per MW or Mvar through a tie line: a tie-breaker only
MIP_REL_GAP = 1e-9
MIP_ABS_GAP = 1e-7
NODE_LIMIT = 20_000  # branch-and-bound nodes per MILP (deterministic); beyond it: an error
NO_PREFERENCE = {1: 1.0, 2: 1.0, 3: 1.0}
# Default preference of every microgrid (the seed does not give values): its own tier-1
# and tier-2 loads from its own sources are worth 1.5 x those elsewhere; tier 3 no more.
DEFAULT_PREFERENCE = {1: 1.5, 2: 1.5, 3: 1.0}


# --- data ----------------------------------------------------------------------------------
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


@dataclass(frozen=True)
class CoordinationCase:
    """An event with its microgrids (their internal data stay on the microgrid side)."""

    name: str
    hour: int
    event: DSOEvent
    microgrids: dict[str, MicrogridNetwork]
    conditions: dict[str, MicrogridConditions]


def load_dso_generators(path: Path = DATA_DIR / DSO_DG_FILE) -> tuple[DSOGenerator, ...]:
    """The DSO's dispatchable units of the seed 003 case (checked)."""
    checks = {
        "bus_ieee": (lambda v: 1 <= int(v) <= 33, "use an IEEE bus 1..33"),
        "p_max_mw": AT_LEAST_ZERO,
        "q_max_mvar": AT_LEAST_ZERO,
    }

    def error(row, column, message, fix):
        return ParameterError(
            f"{path.name} row {row.name + 2} ({row['name']}) {column}", message, fix
        )

    return checked_records(pd.read_csv(path), DSOGenerator, checks, error)


def main_grid_loss_case(
    data: NetworkData | None = None,
    *,
    hour: int = 18,
    window_h: float = 2.0,
    faulted: tuple[int, ...] = (12, 22),
    data_dir: Path = DATA_DIR,
) -> CoordinationCase:
    """The seed 003 case: IEEE 33 with MG1/MG2/MG3 at buses 2/11/27, the main grid lost,
    branches 12 (12-13) and 22 (3-23, the reading of the seed's "22-23") damaged; one window
    of ``window_h`` hours at ``hour`` of the built-in profiles (18 h: the DSO's peak load);
    storage at its initial SOC; the DSO's black-start generators; tier weights 100/10/0.2.
    """
    data = data or load_network_data(data_dir)
    dd = dso_data(build_ieee33(data), data)
    profile = pd.read_csv(data_dir / "profiles_default.csv").set_index("hour")
    if hour not in profile.index:
        raise ValueError(f"hour {hour}: use an hour of the profile, 0..23")
    load_pu, wind_pu, pv_pu = (float(profile.at[hour, c]) for c in ("load_pu", "wind_pu", "pv_pu"))
    unknown = sorted(set(faulted) - {b.ieee for b in dd.branches})
    if unknown:
        raise ValueError(f"faulted: unknown IEEE branches {unknown}")
    event = DSOEvent(
        dso=dd,
        faulted=frozenset(faulted),
        main_grid_available=False,
        initial_closed=default_topology(dd),
        demand_mw={b: p * load_pu for b, p in dd.load_p_nom_mw.items()},
        demand_mvar={b: q * load_pu for b, q in dd.load_q_nom_mvar.items()},
        pv_mw={pv.name: pv.p_rated_mw * pv_pu for pv in data.pv},
        pv_pf_min={pv.name: pv.pf_min for pv in data.pv},
        generators=load_dso_generators(data_dir / DSO_DG_FILE),
        tier={b: data.tier_of(b) for b in dd.buses},
        tier_weight={t: data.tier_weight(t) for t in TIERS},
        window_h=window_h,
    )
    nets = load_microgrid_networks(data, data_dir)
    conditions = {
        g: window_conditions(net, window_h=window_h, load_pu=load_pu, wind_pu=wind_pu)
        for g, net in nets.items()
    }
    return CoordinationCase("ieee33_main_grid_loss", hour, event, nets, conditions)


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
    sources = [g.name for g in ev.generators if g.grid_forming]
    sources += [p.name for p in ports.values() if p.grid_forming]
    m.S = pyo.Set(initialize=sorted(sources))  # grid-forming candidates besides the substation


def declare_dso_vars(m: pyo.Block, ev: DSOEvent, ports: Mapping[str, TiePort]) -> None:
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
    where = {g.name: g.bus_ieee for g in ev.generators} | {
        p.name: p.bus_ieee for p in ports.values()
    }
    dd, n_bus = ev.dso, len(ev.dso.buses)
    shared = {b for b in m.B if sum(w == b for w in where.values()) + (b == dd.root) > 1}

    def fixed(bus):  # the substation
        return 1 if bus == dd.root and ev.main_grid_available else 0

    blocks.declare_commodity_vars(m, n_bus)
    blocks.declare_live_branches(m, dd.branches)
    flags = {"source_energised": (m.sigma, m.S, where)}
    sources = blocks.declare_grid_forming(m, flags, sorted(shared), fixed)
    blocks.declare_commodity_flow(m, dd.branches, n_bus, sources)


def declare_power_flow(m: pyo.Block, ev: DSOEvent, ports: Mapping[str, TiePort]) -> None:
    """LinDistFlow (lossless) on live branches; voltage band on energised buses."""
    dd = ev.dso
    br = {b.ieee: b for b in dd.branches}
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
    s_max = {ln: br[ln].s_max_pu for ln in m.L}
    blocks.declare_flow_limits(m, s_max, lambda ln: m.live[ln], m.L)


def declare_units(m: pyo.Block, ev: DSOEvent) -> None:
    """PV and DSO generators produce only on an energised bus."""
    dd = ev.dso
    gen = {g.name: g for g in ev.generators}
    tan_pv = {p: q_per_p(ev.pv_pf_min.get(p, 1.0)) for p in m.PV}
    m.pv_cap = pyo.Constraint(
        m.PV, rule=lambda _, p: m.pv[p] <= ev.pv_mw[p] * m.energised[dd.pv_bus[p]]
    )
    blocks.declare_pv_power_factor(m, tan_pv)
    m.dg_cap = pyo.Constraint(
        m.G, rule=lambda _, g: m.dg_p[g] <= gen[g].p_max_mw * m.energised[gen[g].bus_ieee]
    )
    blocks.declare_symmetric_limit(
        m,
        "dg_q",
        [m.G],
        lambda g: m.dg_q[g],
        lambda g: gen[g].q_max_mvar * m.energised[gen[g].bus_ieee],
    )


def declare_tie_lines(m: pyo.Block, ports: Mapping[str, TiePort]) -> None:
    """Exchange only with an energised bus; the PCC band on an energised microgrid bus."""
    lim = {g: ports[g].limit_mw for g in m.M}
    bus = {g: ports[g].bus_ieee for g in m.M}
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
        m.M, rule=lambda _, g: m.v[bus[g]] >= ports[g].pcc_v_band_pu[0] ** 2 * m.energised[bus[g]]
    )
    m.pcc_v_max = pyo.Constraint(
        m.M, rule=lambda _, g: m.v[bus[g]] <= ports[g].pcc_v_band_pu[1] ** 2
    )


def declare_pickup_and_switching(m: pyo.Block, ev: DSOEvent) -> None:
    m.pickup_energised = pyo.Constraint(m.D, rule=lambda _, b: m.x[b] <= m.energised[b])

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
    declare_dso_vars(m, ev, ports)
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
    m.vn_polygon = pyo.Constraint(
        m.FACET,
        rule=lambda _, g, k: (
            o[g].hull.normals[k][0] * m.tie_p[g] + o[g].hull.normals[k][1] * m.tie_q[g]
            <= o[g].hull.offsets[k]
        ),
    )
    m.vn_own_load = pyo.Constraint(
        m.M, m.VT, rule=lambda _, g, j: m.vn_s[g, j] == m.y_int[g, j] + m.y_ext[g, j]
    )
    m.vn_sources = pyo.Constraint(
        m.M, rule=lambda _, g: m.vn_g[g] == sum(m.y_int[g, j] for j in m.VT) + m.vn_export[g]
    )
    m.vn_imports = pyo.Constraint(
        m.M, rule=lambda _, g: m.vn_import[g] == sum(m.y_ext[g, j] for j in m.VT)
    )
    m.vn_tie = pyo.Constraint(m.M, rule=lambda _, g: m.tie_p[g] == m.vn_import[g] - m.vn_export[g])
    m.vn_reactive = pyo.Constraint(
        m.M,
        rule=lambda _, g: (
            m.tie_q[g] + m.vn_h[g] == o[g].load_q_per_p * sum(m.vn_s[g, j] for j in m.VT)
        ),
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
    m = pyo.ConcreteModel(name="coordinated_upper")
    add_dso_restoration(
        m, event, {g: port_of(o, max(map(abs, o.hull.box()))) for g, o in offers.items()}
    )
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


def virtual_node_value(
    offer: VirtualNodeOffer, tier_weight: Mapping[int, float], p_mw: float, q_mvar: float
) -> float:
    """The virtual node's best value at (P, Q) (weighted MW, with the preferences)."""
    m = build_virtual_node_model(offer, tier_weight, p_mw, q_mvar)
    solve_optimal(m, persistent_highs(), f"{offer.name} virtual node")
    return pyo.value(m.mg_value)


# --- (b) central dispatch -----------------------------------------------------------------
def build_central_model(
    event: DSOEvent,
    microgrids: Mapping[str, MicrogridNetwork],
    conditions: Mapping[str, MicrogridConditions],
) -> pyo.ConcreteModel:
    """(b) The DSO network and every microgrid's full internal model in one MILP."""
    m = pyo.ConcreteModel(name="coordinated_central")
    add_dso_restoration(
        m, event, {g: port_of(n, n.params.pcc_p_max_mw) for g, n in microgrids.items()}
    )
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


# --- results --------------------------------------------------------------------------------
@dataclass(frozen=True)
class StrategyResult:
    """One strategy's restoration of the event (MW over the window; MWh = MW x window_h)."""

    strategy: str
    window_h: float
    dso_restored_mw: dict[int, float]  # per tier
    dso_demand_mw: dict[int, float]
    mg_restored_mw: dict[str, dict[int, float]]  # per microgrid, per tier
    mg_demand_mw: dict[str, dict[int, float]]
    tie_p_mw: dict[str, float]  # > 0: the microgrid imports
    tie_q_mvar: dict[str, float]
    tier1_buses: tuple[int, ...]  # DSO tier-1 buses
    tier1_served: tuple[int, ...]
    weighted_mw: float  # true tier weights, DSO + microgrids
    objective: float  # the model's own (preferences, switching penalty)
    closed_ties: tuple[int, ...]
    energised_buses: tuple[int, ...]
    live_branches: tuple[int, ...]  # closed and energised
    switch_actions: int
    island_sources: tuple[str, ...]  # grid-forming sources in use
    dg_p_mw: dict[str, float]
    solve_time_s: dict[str, float]
    mg_promised_weighted_mw: dict[str, float] = field(default_factory=dict)  # (c) only

    def restored_mw_by_tier(self) -> dict[int, float]:
        """DSO plus microgrid loads, per tier."""
        return {
            t: self.dso_restored_mw[t] + sum(r[t] for r in self.mg_restored_mw.values())
            for t in TIERS
        }

    def mg_weighted_mw(self, weights: Mapping[int, float]) -> dict[str, float]:
        return {g: sum(weights[t] * r[t] for t in TIERS) for g, r in self.mg_restored_mw.items()}


def _tier_sum(ev: DSOEvent, buses) -> dict[int, float]:
    out = dict.fromkeys(TIERS, 0.0)
    for b in buses:
        out[ev.tier[b]] += ev.demand_mw[b]
    return out


def _timed(fn, *args) -> tuple[object, float]:
    """``fn(*args)`` and its wall time (s)."""
    start = time.perf_counter()
    return fn(*args), time.perf_counter() - start


def solve_milp(model: pyo.ConcreteModel, what: str, node_limit: int = NODE_LIMIT) -> float:
    """Solve to a proven optimum (tight gaps) and return the wall time; a solve that stops
    at ``node_limit`` raises :class:`OptimisationError` (no unproven plan is used)."""
    limits = MipLimits(MIP_REL_GAP, node_limit, MIP_ABS_GAP)
    return _timed(solve_optimal, model, persistent_highs(), what, limits)[1]


def solve_lower(
    net: MicrogridNetwork, cond: MicrogridConditions, p_mw: float, q_mvar: float
) -> tuple[dict[int, float], float]:
    """The lower level: restored MW per tier at the command, and the solve time."""
    m = build_lower_model(net, cond, p_mw, q_mvar)
    seconds = _timed(solve_optimal, m, persistent_highs(), f"{net.name} lower level")[1]
    return {t: pyo.value(m.served_mw[t]) for t in TIERS}, seconds


def _result(
    case: CoordinationCase,
    strategy: str,
    m: pyo.ConcreteModel,
    mg_restored: dict[str, dict[int, float]],
    tie: dict[str, tuple[float, float]],
    times: dict[str, float],
) -> StrategyResult:
    """Read the DSO part of a solved model and assemble the result."""
    ev = case.event
    w = ev.tier_weight
    ties = {b.ieee for b in ev.dso.branches if b.is_tie}
    picked = [b for b in m.D if pyo.value(m.x[b]) > 0.5]
    dso_restored = _tier_sum(ev, picked)
    promised = {g: pyo.value(m.mg_promised[g]) for g in m.M} if hasattr(m, "mg_promised") else {}
    return StrategyResult(
        strategy=strategy,
        window_h=ev.window_h,
        dso_restored_mw=dso_restored,
        dso_demand_mw=_tier_sum(ev, list(m.D)),
        mg_restored_mw=mg_restored,
        mg_demand_mw={
            g: {t: mw * case.conditions[g].load_pu for t, mw in n.load_mw_by_tier().items()}
            for g, n in case.microgrids.items()
        },
        tie_p_mw={g: tie[g][0] for g in case.microgrids},
        tie_q_mvar={g: tie[g][1] for g in case.microgrids},
        tier1_buses=ev.tier1_buses,
        tier1_served=tuple(b for b in ev.tier1_buses if b in picked),
        weighted_mw=sum(w[t] * dso_restored[t] for t in TIERS)
        + sum(w[t] * r[t] for r in mg_restored.values() for t in TIERS),
        objective=-pyo.value(m.obj),
        closed_ties=tuple(sorted(ln for ln in ties if pyo.value(m.alpha[ln]) > 0.5)),
        energised_buses=tuple(b for b in m.B if pyo.value(m.energised[b]) > 0.5),
        live_branches=tuple(ln for ln in m.L if pyo.value(m.live[ln]) > 0.5),
        switch_actions=round(pyo.value(m.switch_actions)),
        island_sources=tuple(s for s in m.S if pyo.value(m.sigma[s]) > 0.5),
        dg_p_mw={g: pyo.value(m.dg_p[g]) for g in m.G},
        solve_time_s={**times, "total": sum(times.values())},
        mg_promised_weighted_mw=promised,
    )


def _lower_levels(
    case: CoordinationCase, tie: dict[str, tuple[float, float]]
) -> tuple[dict[str, dict[int, float]], float]:
    solved = {
        g: solve_lower(net, case.conditions[g], *tie[g]) for g, net in case.microgrids.items()
    }
    return {g: r for g, (r, _) in solved.items()}, sum(s for _, s in solved.values())


def _tie_points(m: pyo.Block) -> dict[str, tuple[float, float]]:
    return {g: (pyo.value(m.tie_p[g]), pyo.value(m.tie_q[g])) for g in m.M}


# --- the three strategies ------------------------------------------------------------------
def solve_no_sharing(case: CoordinationCase, node_limit: int = NODE_LIMIT) -> StrategyResult:
    """(a) Microgrids islanded at (0, 0); the DSO restores from its own sources."""
    m, build_s = _timed(build_upper_model, case.event, {})
    upper_s = solve_milp(m, "no-sharing DSO restoration", node_limit)
    tie = dict.fromkeys(case.microgrids, (0.0, 0.0))
    restored, lower_s = _lower_levels(case, tie)
    times = {"build": build_s, "upper": upper_s, "lower": lower_s}
    return _result(case, "no_sharing", m, restored, tie, times)


def solve_central(case: CoordinationCase, node_limit: int = NODE_LIMIT) -> StrategyResult:
    """(b) One MILP over the DSO network and the microgrids' internal networks."""
    m, build_s = _timed(build_central_model, case.event, case.microgrids, case.conditions)
    upper_s = solve_milp(m, "central restoration", node_limit)
    restored = {g: {t: pyo.value(m.mg[g].served_mw[t]) for t in TIERS} for g in m.M}
    times = {"build": build_s, "upper": upper_s}
    return _result(case, "central", m, restored, _tie_points(m), times)


def project_all(
    case: CoordinationCase, preference: Mapping[str, dict[int, float]], threshold_mw: float
) -> dict[str, Projection]:
    """Each microgrid's projection and offer (runs on the microgrid side)."""
    return {
        g: project_microgrid(net, case.conditions[g], dict(preference[g]), threshold_mw)
        for g, net in case.microgrids.items()
    }


def uniform_preference(
    case: CoordinationCase, preference: dict[int, float]
) -> dict[str, dict[int, float]]:
    """The same preference coefficients for every microgrid."""
    return {g: dict(preference) for g in case.microgrids}


def solve_projection(
    case: CoordinationCase,
    preference: Mapping[str, dict[int, float]] | None = None,
    threshold_mw: float = 1e-3,
    node_limit: int = NODE_LIMIT,
    projections: Mapping[str, Projection] | None = None,
) -> StrategyResult:
    """(c) Projection, upper level on the offers, lower levels at the tie-line commands.

    ``preference`` per microgrid (default :data:`DEFAULT_PREFERENCE` for all);
    ``projections`` may be reused (the polygons do not depend on the preferences); the
    time reported for the projections is the sum of their own times.
    """
    preference = preference or uniform_preference(case, DEFAULT_PREFERENCE)
    if projections is None:
        projections = project_all(case, preference, threshold_mw)
    offers = {g: p.offer.with_preference(dict(preference[g])) for g, p in projections.items()}
    m, build_s = _timed(build_upper_model, case.event, offers)
    upper_s = solve_milp(m, "projection upper level", node_limit)
    tie = _tie_points(m)
    restored, lower_s = _lower_levels(case, tie)
    projection_s = sum(p.time_s for p in projections.values())
    times = {"projection": projection_s, "build": build_s, "upper": upper_s, "lower": lower_s}
    return _result(case, "projection", m, restored, tie, times)


def compare_strategies(
    case: CoordinationCase,
    preference: Mapping[str, dict[int, float]] | None = None,
    threshold_mw: float = 1e-3,
    node_limit: int = NODE_LIMIT,
) -> tuple[dict[str, StrategyResult], dict[str, Projection]]:
    """The three strategies on one event (the projections are returned for checks)."""
    preference = preference or uniform_preference(case, DEFAULT_PREFERENCE)
    projections = project_all(case, preference, threshold_mw)
    results = {
        "no_sharing": solve_no_sharing(case, node_limit),
        "central": solve_central(case, node_limit),
        "projection": solve_projection(case, preference, threshold_mw, node_limit, projections),
    }
    return results, projections


# --- report -------------------------------------------------------------------------------
def format_table(results: Mapping[str, StrategyResult]) -> str:
    """The strategies side by side: restored load per tier, tie lines, tier-1 buses, times."""
    first = next(iter(results.values()))
    mgs = list(first.tie_p_mw)

    def kw(values) -> str:
        return " ".join(f"{1000 * v:7.1f}" for v in values)

    def mg_sum(per_mg: dict[str, dict[int, float]]) -> list[float]:
        return [sum(x[t] for x in per_mg.values()) for t in TIERS]

    lines = [
        f"Restored load (kW over the {first.window_h:g} h window; weighted = sum of tier "
        "weight x MW; P > 0: the microgrid imports, kW)",
        f"  {'strategy':<16s} {'DSO T1':>7s} {'T2':>7s} {'T3':>7s} {'MG T1':>7s} {'T2':>7s} "
        f"{'T3':>7s} {'total':>7s} {'weighted':>9s} "
        + " ".join(f"{'P ' + g:>7s}" for g in mgs)
        + f" {'solve s':>8s}",
    ]
    for name, r in results.items():
        tiers = [r.dso_restored_mw[t] for t in TIERS] + mg_sum(r.mg_restored_mw)
        lines.append(
            f"  {name:<16s} {kw(tiers)} {kw([sum(tiers)])} {r.weighted_mw:9.3f} "
            f"{kw(r.tie_p_mw[g] for g in mgs)} {r.solve_time_s['total']:8.2f}"
        )
    demand = [first.dso_demand_mw[t] for t in TIERS] + mg_sum(first.mg_demand_mw)
    lines.append(f"  {'demand':<16s} {kw(demand)}")
    lines.append("  DSO tier-1 buses served / microgrid tier-1 served / ties closed / sources:")
    for name, r in results.items():
        mg1 = ", ".join(
            f"{g} {1000 * r.mg_restored_mw[g][1]:.0f}/{1000 * r.mg_demand_mw[g][1]:.0f}"
            for g in mgs
        )
        missing = sorted(set(r.tier1_buses) - set(r.tier1_served))
        lines.append(
            f"  {name:<16s} {list(r.tier1_served)} (not: {missing or 'none'}); {mg1} kW; "
            f"ties {list(r.closed_ties) or 'none'}; {', '.join(r.island_sources) or 'none'}"
        )
    return "\n".join(lines)
