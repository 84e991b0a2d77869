"""Multi-time-scale service restoration: the centralised reference (a MILP for HiGHS).

Per unit with S_base = 1 MVA; faulted branches start open (no switching action), a
substation fault also loses the main grid. Per period t of ``durations_h[t]`` hours:

* switch states alpha (faulted and ``forced_open`` fixed open), actions
  sw >= |alpha_t - alpha_t-1|, optionally within a budget;
* bus energisation; a closed branch joins buses of equal energisation and is *live*
  (alpha energised_from): dead closed branches carry no power and do not count for radiality;
* radiality with islands (seed 002, :func:`blocks.declare_commodity_flow`) around the
  substation (when available) and grid-forming microgrids (sigma), one source each;
* DistFlow on live branches, losses by tangent cuts at a low voltage (:func:`declare_losses`),
  the (r^2 + x^2) ell term of the drop dropped (conservative), |P|, |Q| <= S_max live,
  (v_min + v_margin)^2 energised <= v <= v_max^2;
* load pickup x <= energised, monotone; PV on energised buses within its power factor;
* microgrid m behind its PCC at bus b_m: |pm|, |qm| <= PCC limit energised_b_m (pm > 0:
  import); its units at their power factors unless it forms an island, then it covers the
  island's Q, holds ``gf_vm_pu`` and keeps ``reserve_frac`` of its export as headroom;
  turbine ramps, storage with a charge/discharge binary and SOC dynamics, wind 0..available,
  own load served as a fraction valued at tier ``load_tier``.

Objective (CNY, minimised): -value of the weighted restored energy (tier weights 100 / 10 /
0.2, seed 003) + switching + losses + a small curtailment penalty. Solving and reading the
plan: :mod:`mgcosim.controllers.restoration_solve`.
"""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo

from mgcosim.controllers import blocks
from mgcosim.controllers.dso import DSOData
from mgcosim.controllers.restoration_data import RestorationInputs, validate_inputs
from mgcosim.networks.params import NetworkData, q_per_p
from mgcosim.networks.storage import energy_change_mwh

LOSS_V_HAT_PU = 0.95  # voltage of the loss estimate (losses scale with 1 / V^2)
Q_BIG_M = 5.0  # Mvar, > any microgrid reactive mismatch (PCC limits are ~1.5)
V_BIG_M = 0.5  # > v_max^2 - v_min^2
RESERVE_BIG_M = 10.0  # MW, > any reserve requirement


# --- model -------------------------------------------------------------------------------
def build_restoration_model(
    dd: DSOData,
    data: NetworkData,
    inp: RestorationInputs,
    loss_points: np.ndarray = blocks.LOSS_CUT_POINTS,
) -> pyo.ConcreteModel:
    """The centralised restoration MILP of one event (see the module docstring);
    ``loss_points``: the tangent points of its loss estimate (:func:`declare_losses`)."""
    validate_inputs(dd, inp)
    m = pyo.ConcreteModel(name="restoration")
    m.inp = inp  # plain attributes kept for the extraction
    m.root_bus = dd.root
    m.mg_bus_of = dict(dd.mg_bus)
    m.tiers = {b: data.tier_of(b) for b in dd.buses}
    m.r_pu = {b.ieee: b.r_pu for b in dd.branches}
    declare_sets(m, dd, inp)
    declare_network_vars(m, dd, inp)
    declare_ports(m, dd, inp)
    declare_radiality(m, dd, inp)
    declare_power_flow(m, dd, data, inp, loss_points)
    declare_switching(m, inp)
    blocks.declare_load_pickup(m, m.T)
    declare_microgrids(m, inp)
    declare_pcc(m, dd, inp)
    declare_objective(m, dd, data, inp)
    relax_look_ahead(m, inp.integer_periods)
    return m


def relax_look_ahead(m: pyo.Block, integer_periods: int | None) -> list[pyo.Var]:
    """The periods from ``integer_periods`` on as their linear relaxation: binaries in
    [0, 1] (a look-ahead that keeps the energy budget over the horizon; only the first
    periods' decisions are applied before the next plan). Returns the relaxed variables."""
    if integer_periods is None:
        return []
    relaxed = [
        var
        for var in m.component_data_objects(pyo.Var, descend_into=True)
        if var.is_binary() and not var.fixed and period_of(var) >= integer_periods
    ]
    for var in relaxed:
        var.domain = pyo.UnitInterval
    return relaxed


def period_of(var: pyo.Var) -> int:
    """The period of a variable of the model (its last index, periods being last)."""
    index = var.index()
    return index[-1] if isinstance(index, tuple) else index


def declare_sets(m: pyo.Block, dd: DSOData, inp: RestorationInputs) -> None:
    m.T = pyo.RangeSet(0, inp.n_periods - 1)
    m.B = pyo.Set(initialize=dd.buses)
    m.L = pyo.Set(initialize=[b.ieee for b in dd.branches])
    m.M = pyo.Set(initialize=sorted(inp.microgrids))
    m.PV = pyo.Set(initialize=sorted(p for p in dd.pv_bus if p in inp.pv_mw))
    m.D = pyo.Set(  # buses with a DSO load to pick up
        initialize=[
            b for b in dd.buses if any(v > 0 for v in inp.demand_mw.get(b, [])[: inp.n_periods])
        ]
    )


def declare_network_vars(m: pyo.Block, dd: DSOData, inp: RestorationInputs) -> None:
    s_max = {b.ieee: b.s_max_pu for b in dd.branches}
    m.alpha = pyo.Var(m.L, m.T, within=pyo.Binary)
    m.live = pyo.Var(m.L, m.T, bounds=(0, 1))  # = alpha * energised_from (= alpha * energised_to)
    m.sw = pyo.Var(m.L, m.T, within=pyo.NonNegativeReals)
    m.energised = pyo.Var(m.B, m.T, within=pyo.Binary)
    m.sigma = pyo.Var(m.M, m.T, within=pyo.Binary)  # microgrid m forms an island at its bus
    m.P = pyo.Var(m.L, m.T, bounds=lambda _, ln, t: (-s_max[ln], s_max[ln]))
    m.Q = pyo.Var(m.L, m.T, bounds=lambda _, ln, t: (-s_max[ln], s_max[ln]))
    m.v = pyo.Var(m.B, m.T, bounds=(0.0, dd.v_max_pu**2), initialize=1.0)
    p0_max = dd.substation_p_max_mw if inp.main_grid_available else 0.0
    m.P0 = pyo.Var(m.T, bounds=(-p0_max, p0_max))
    m.Q0 = pyo.Var(m.T, bounds=(-p0_max, p0_max))
    m.x = pyo.Var(m.D, m.T, within=pyo.Binary)
    m.pv = pyo.Var(m.PV, m.T, within=pyo.NonNegativeReals)
    m.qpv = pyo.Var(m.PV, m.T)
    for ln in inp.faulted | inp.forced_open:
        for t in m.T:
            m.alpha[ln, t].fix(0)
    if inp.main_grid_available:
        for t in m.T:
            m.energised[dd.root, t].fix(1)
            m.v[dd.root, t].fix(dd.v_root_pu**2)


def declare_ports(m: pyo.Block, dd: DSOData, inp: RestorationInputs) -> None:
    """Boundary power of a sub-network model (none in the centralised model).

    |port_p|, |port_q| <= S_max of the branch times the energisation of the port bus (own
    boundary bus, or ghost bus) and, on the exporting side, times ``port_alpha``, the
    exporter's copy of the branch's switch (the importer's switch is its ``alpha``).
    """
    ports = {p.branch: p for p in inp.ports}
    m.PORT = pyo.Set(initialize=sorted(ports))
    lim = {ln: p.s_max_pu for ln, p in ports.items()}
    m.port_p = pyo.Var(m.PORT, m.T, bounds=lambda _, ln, t: (-lim[ln], lim[ln]))
    m.port_q = pyo.Var(m.PORT, m.T, bounds=lambda _, ln, t: (-lim[ln], lim[ln]))
    # the exporter's copy only gates its withdrawal: relaxed to [0, 1] (the switch itself is a
    # binary of the importing model; the sub-network ADMM rounds the consensus at the end)
    m.port_alpha = pyo.Var(m.PORT, m.T, bounds=(0.0, 1.0))

    def on(ln, t):
        return m.energised[ports[ln].bus, t]

    def switch(ln, t):
        return m.alpha[ln, t] if ports[ln].imports else m.port_alpha[ln, t]

    def within(flow, gate, sign):
        def rule(_, ln, t):
            return sign * flow[ln, t] <= lim[ln] * gate(ln, t)

        return rule

    for name, flow in (("p", m.port_p), ("q", m.port_q)):
        for side, sign in (("up", 1), ("dn", -1)):
            for gate_name, gate in (("energised", on), ("closed", switch)):
                constraint = pyo.Constraint(m.PORT, m.T, rule=within(flow, gate, sign))
                m.add_component(f"port_{name}_{gate_name}_{side}", constraint)
    for ln, port in ports.items():  # the importer's switch is its alpha; the copy is unused
        if port.imports:
            for t in m.T:
                m.port_alpha[ln, t].fix(0)


def declare_radiality(m: pyo.Block, dd: DSOData, inp: RestorationInputs) -> None:
    """Single-commodity flow with virtual sources: islands, one source each, no loop."""
    n_bus = len(dd.buses)
    ghosts = {port.bus for port in inp.ports if port.imports}
    mg_buses = [b for b in dd.buses if b in {dd.mg_bus[g] for g in m.M}]

    def fixed(bus, t):  # the substation; a ghost bus is fed by the neighbour when energised
        count = 1 if bus == dd.root and inp.main_grid_available else 0
        return count + m.energised[bus, t] if bus in ghosts else count

    blocks.declare_commodity_vars(m, n_bus, m.T)
    blocks.declare_live_branches(m, dd.branches, m.T)
    flags = {"source_energised": (m.sigma, m.M, dd.mg_bus)}
    sources = blocks.declare_grid_forming(m, flags, mg_buses, fixed, m.T)
    blocks.declare_commodity_flow(m, dd.branches, n_bus, sources, m.T)


def declare_power_flow(
    m: pyo.Block,
    dd: DSOData,
    data: NetworkData,
    inp: RestorationInputs,
    loss_points: np.ndarray = blocks.LOSS_CUT_POINTS,
):
    """DistFlow with estimated losses on live branches; voltage band on energised buses."""
    br = {b.ieee: b for b in dd.branches}
    big_m = dd.v_max_pu**2 + 0.5  # > any |v_j - v_i + 2 (r P + x Q)| on an open branch
    ratio = {b: dd.load_q_per_p(b) for b in dd.buses}
    m.load_p = pyo.Param(
        m.D, m.T, initialize=lambda _, b, t: float(inp.demand_mw[b][t]), mutable=True
    )
    m.mg_bus_pm = pyo.Var(m.M, m.T)  # microgrid import at its IEEE bus (MW)
    m.mg_bus_qm = pyo.Var(m.M, m.T)
    mg_at = {b: [mg for mg in m.M if dd.mg_bus[mg] == b] for b in dd.buses}
    pv_at = {b: [p for p in m.PV if dd.pv_bus[p] == b] for b in dd.buses}

    declare_losses(m, dd, loss_points)

    inc = blocks.Incidence.of(dd.branches, dd.buses)
    ends = {b: [ln for ln in m.L if b in (br[ln].from_bus, br[ln].to_bus)] for b in dd.buses}

    def load(bus, t, q=False):
        if bus not in m.D:
            return 0.0
        return m.load_p[bus, t] * m.x[bus, t] * (ratio[bus] if q else 1.0)

    def balance(name, flow, coef, pv, port, substation, mg, q):
        def supply(bus, t):  # each branch's loss withdrawn half at either end
            loss = sum(0.5 * getattr(br[ln], coef) * m.ell[ln, t] for ln in ends[bus])
            ports = (
                port[p.branch, t] * (1 if p.imports else -1) for p in inp.ports if p.bus == bus
            )
            root = substation[t] if bus == dd.root else 0.0
            return -loss + sum(pv[p, t] for p in pv_at[bus]) + sum(ports) + root

        def demand(bus, t):
            return load(bus, t, q) + sum(mg[g, t] for g in mg_at[bus])

        blocks.declare_bus_balance(m, name, inc, flow, supply, demand, m.B, m.T)

    balance("balance_p", m.P, "r_pu", m.pv, m.port_p, m.P0, m.mg_bus_pm, False)
    balance("balance_q", m.Q, "x_pu", m.qpv, m.port_q, m.Q0, m.mg_bus_qm, True)

    blocks.declare_voltage_drop(m, dd.branches, lambda ln, t: m.live[ln, t], big_m, m.L, m.T)
    v_floor2 = (dd.v_min_pu + inp.v_margin_pu) ** 2
    m.v_min = pyo.Constraint(
        m.B, m.T, rule=lambda _, b, t: m.v[b, t] >= v_floor2 * m.energised[b, t]
    )
    s_max = {ln: b.s_max_pu for ln, b in br.items()}
    blocks.declare_flow_limits(m, s_max, lambda ln, t: m.live[ln, t], m.L, m.T)
    # PV: available only on an energised bus, power factor >= pf_min
    pf_min = {pv.name: pv.pf_min for pv in data.pv}
    m.pv_avail = pyo.Param(
        m.PV, m.T, initialize=lambda _, p, t: float(inp.pv_mw[p][t]), mutable=True
    )
    m.pv_cap = pyo.Constraint(
        m.PV,
        m.T,
        rule=lambda _, p, t: m.pv[p, t] <= m.pv_avail[p, t] * m.energised[dd.pv_bus[p], t],
    )
    tan_pv = {p: q_per_p(pf_min.get(p, 1.0)) for p in m.PV}
    blocks.declare_pv_power_factor(m, tan_pv, m.T)


def declare_losses(m: pyo.Block, dd: DSOData, points: np.ndarray = blocks.LOSS_CUT_POINTS) -> None:
    """Squared current ell >= (P^2 + Q^2) / v_hat by tangent cuts at ``points`` of the
    rating (an outer approximation).

    The loss r ell is withdrawn half at each end of the branch, whichever way the power
    flows (islands reverse flows). ``LOSS_V_HAT_PU`` is a low voltage, so losses are not
    underestimated in stressed restored networks. The voltage drop omits the
    (r^2 + x^2) ell term, which only raises the receiving-end voltage: conservative.
    """
    s_max = {b.ieee: b.s_max_pu for b in dd.branches}
    m.ell_p = pyo.Var(m.L, m.T, within=pyo.NonNegativeReals)
    m.ell_q = pyo.Var(m.L, m.T, within=pyo.NonNegativeReals)
    m.ell = pyo.Expression(m.L, m.T, rule=lambda _, ln, t: m.ell_p[ln, t] + m.ell_q[ln, t])
    blocks.declare_loss_cuts(m, s_max, lambda _: LOSS_V_HAT_PU**2, m.ell_p, m.ell_q, points=points)


def declare_pcc(m: pyo.Block, dd: DSOData, inp: RestorationInputs) -> None:
    """PCC exchange limits, the microgrids' reactive exchange, grid-former voltage.

    A microgrid that does not form an island runs its units at their power factors (as the
    grid simulator does), so its reactive import is fixed by its active powers:
    ``qm = q_load served - q_mt - q_wind``. A grid former covers its island's reactive
    balance (any qm) and sets its bus voltage to ``gf_vm_pu``; both are relaxed by big-M
    on sigma (and on a dead IEEE bus, where the microgrid supplies only itself).
    """
    mgs = inp.microgrids
    # PCC: a closed branch with flow limits, zero exchange when its IEEE bus is dead
    lim_p = {g: mgs[g].params.pcc_p_max_mw for g in m.M}
    lim_q = {g: lim_p[g] if mgs[g].q_max_mvar is None else mgs[g].q_max_mvar for g in m.M}
    for name, var, lim in (("pm", m.mg_bus_pm, lim_p), ("qm", m.mg_bus_qm, lim_q)):
        blocks.declare_symmetric_limit(
            m,
            name,
            [m.M, m.T],
            lambda g, t, v=var: v[g, t],
            lambda g, t, lim=lim: lim[g] * m.energised[dd.mg_bus[g], t],
        )

    declare_pcc_apparent_power(m, dd, {g: mgs[g].params.pcc_s_max_mva for g in m.M})

    def q_mismatch(g, t):
        p = mgs[g].params
        q_units = (
            q_per_p(p.load_pf) * m.mg_load[g, t] * m.served[g, t]
            - q_per_p(p.mt_pf) * m.mt[g, t]
            - q_per_p(p.wind_pf) * m.wind[g, t]
        )
        return m.mg_bus_qm[g, t] - q_units

    def free(g, t):  # 0 when the microgrid follows its power factors
        return Q_BIG_M * (m.sigma[g, t] + 1 - m.energised[dd.mg_bus[g], t])

    blocks.declare_symmetric_limit(m, "qm_pf", [m.M, m.T], q_mismatch, free)

    def v_gap(g, t):
        return m.v[dd.mg_bus[g], t] - mgs[g].params.gf_vm_pu ** 2

    blocks.declare_symmetric_limit(
        m, "v_gf", [m.M, m.T], v_gap, lambda g, t: V_BIG_M * (1 - m.sigma[g, t])
    )


S_POLYGON_SIDES = 16  # sides of the regular polygon inscribed in the PCC's S circle


def declare_pcc_apparent_power(m: pyo.Block, dd: DSOData, s_max_mva: dict[str, float]) -> None:
    """|pm + j qm| <= S_max at the PCCs with a finite rating, by the regular polygon of
    ``S_POLYGON_SIDES`` sides inscribed in the circle (an inner approximation: every point
    it allows is within the rating; it gives up at most 1 - cos(pi / N) = 1.9 % of S_max).
    The facets are ``cos(theta_k) pm + sin(theta_k) qm <= S_max cos(pi / N) energised``."""
    rated = [g for g in m.M if math.isfinite(s_max_mva[g])]
    if not rated:
        return
    n = S_POLYGON_SIDES
    m.S_FACETS = pyo.RangeSet(0, n - 1)
    reach = math.cos(math.pi / n)

    def facet(_, g, t, k):
        theta = 2 * math.pi * k / n
        flow = math.cos(theta) * m.mg_bus_pm[g, t] + math.sin(theta) * m.mg_bus_qm[g, t]
        return flow <= s_max_mva[g] * reach * m.energised[dd.mg_bus[g], t]

    m.pcc_s_limit = pyo.Constraint(rated, m.T, m.S_FACETS, rule=facet)


def declare_switching(m: pyo.Block, inp: RestorationInputs) -> None:
    blocked = inp.faulted | inp.forced_open

    def previous(ln, t):
        if t > 0:
            return m.alpha[ln, t - 1]
        # opened by protection (faulted) or held open by the reference: no action
        return 0.0 if ln in blocked else float(bool(inp.initial_closed.get(ln, False)))

    blocks.declare_switch_actions(m, previous, inp.switch_budget)


def declare_microgrids(m: pyo.Block, inp: RestorationInputs) -> None:
    mgs = inp.microgrids
    dt = inp.durations_h
    m.mt = pyo.Var(m.M, m.T, bounds=lambda _, g, t: (0.0, mgs[g].params.mt_p_max_mw))
    m.ch = pyo.Var(m.M, m.T, bounds=lambda _, g, t: (0.0, mgs[g].params.ess_p_ch_max_mw))
    m.dis = pyo.Var(m.M, m.T, bounds=lambda _, g, t: (0.0, mgs[g].params.ess_p_dis_max_mw))
    m.u_ch = pyo.Var(m.M, m.T, within=pyo.Binary)
    m.soc = pyo.Var(
        m.M, m.T, bounds=lambda _, g, t: (mgs[g].params.ess_e_min_mwh, mgs[g].params.ess_e_max_mwh)
    )
    m.wind = pyo.Var(m.M, m.T, within=pyo.NonNegativeReals)
    m.served = pyo.Var(m.M, m.T, bounds=(0.0, 1.0))
    m.mg_load = pyo.Param(
        m.M, m.T, initialize=lambda _, g, t: float(mgs[g].load_mw[t]), mutable=True
    )
    m.wind_avail = pyo.Param(
        m.M, m.T, initialize=lambda _, g, t: float(mgs[g].wind_mw[t]), mutable=True
    )
    par = {g: mgs[g].params for g in m.M}
    m.wind_cap = per_mg(m, lambda g, t: m.wind[g, t] <= m.wind_avail[g, t])
    m.ch_on = per_mg(m, lambda g, t: m.ch[g, t] <= par[g].ess_p_ch_max_mw * m.u_ch[g, t])
    m.dis_on = per_mg(m, lambda g, t: m.dis[g, t] <= par[g].ess_p_dis_max_mw * (1 - m.u_ch[g, t]))

    def change(g, t):
        p = par[g]
        return energy_change_mwh(m.ch[g, t], m.dis[g, t], p.ess_eta_ch, p.ess_eta_dis, dt[t])

    def before(g, t):
        return mgs[g].soc_mwh if t == 0 else m.soc[g, t - 1]

    blocks.declare_soc_dynamics(m, "soc_dyn", m.soc, before, change, m.M, m.T)

    blocks.declare_ramp_limits(
        m,
        m.mt,
        lambda g, t: mgs[g].mt_prev_mw if t == 0 else m.mt[g, t - 1],
        lambda g, t: par[g].mt_ramp_mw_per_h * (dt[t] if t == 0 else (dt[t - 1] + dt[t]) / 2),
        m.M,
        m.T,
    )
    declare_island_reserve(m, inp)
    m.mg_balance = per_mg(
        m,
        lambda g, t: (
            m.mt[g, t] + m.wind[g, t] + m.dis[g, t] - m.ch[g, t] + m.mg_bus_pm[g, t]
            == m.mg_load[g, t] * m.served[g, t]
        ),
    )


def per_mg(m: pyo.Block, rule) -> pyo.Constraint:
    """A constraint ``rule(g, t)`` for every microgrid and period."""
    return pyo.Constraint(m.M, m.T, rule=lambda _, g, t: rule(g, t))


def declare_island_reserve(m: pyo.Block, inp: RestorationInputs) -> None:
    """A grid former keeps headroom for its island's losses and load deviations.

    The grid former is the AC slack of its island: it must be able to raise its output by
    ``reserve_frac`` of its export (the loss estimate's error, load forecast errors).
    Headroom = turbine margin + storage margin (more discharge or less charge, within the
    power rating and the energy left above the minimum SOC at the period end).
    """
    par = {g: mg.params for g, mg in inp.microgrids.items()}
    dt = inp.durations_h
    m.h_ess = pyo.Var(m.M, m.T, within=pyo.NonNegativeReals)
    m.h_ess_p = per_mg(
        m, lambda g, t: m.h_ess[g, t] <= par[g].ess_p_dis_max_mw - m.dis[g, t] + m.ch[g, t]
    )
    m.h_ess_e = per_mg(
        m,
        lambda g, t: (
            m.h_ess[g, t] <= (m.soc[g, t] - par[g].ess_e_min_mwh) * par[g].ess_eta_dis / dt[t]
        ),
    )

    def reserve(g, t):
        headroom = par[g].mt_p_max_mw - m.mt[g, t] + m.h_ess[g, t]
        need = -inp.reserve_frac * m.mg_bus_pm[g, t]  # export > 0 when pm < 0
        return headroom >= need - RESERVE_BIG_M * (1 - m.sigma[g, t])

    m.island_reserve = per_mg(m, reserve)


def declare_objective(m: pyo.Block, dd: DSOData, data: NetworkData, inp: RestorationInputs):
    dt = inp.durations_h
    value = inp.value_cny_per_weighted_mwh
    w_bus = {b: data.tier_weight(data.tier_of(b)) for b in dd.buses}
    w_mg = {g: data.tier_weight(inp.microgrids[g].load_tier) for g in m.M}

    def energy(power):  # sum_t dt_t power(t): MWh of a power in MW
        return pyo.quicksum(dt[t] * power(t) for t in m.T)

    def restored_mw(t):  # weighted
        dso = pyo.quicksum(w_bus[b] * m.load_p[b, t] * m.x[b, t] for b in m.D)
        return dso + pyo.quicksum(w_mg[g] * m.mg_load[g, t] * m.served[g, t] for g in m.M)

    def curtailed_mw(t):
        wind = pyo.quicksum(m.wind_avail[g, t] - m.wind[g, t] for g in m.M)
        return wind + pyo.quicksum(m.pv_avail[p, t] - m.pv[p, t] for p in m.PV)

    def loss_mw(t):
        return pyo.quicksum(br.r_pu * m.ell[br.ieee, t] for br in dd.branches)

    m.restored_value = pyo.Expression(expr=value * energy(restored_mw))
    m.switch_cost = pyo.Expression(
        expr=dd.switch_cost * pyo.quicksum(m.sw[ln, t] for ln in m.L for t in m.T)
    )
    m.loss_cost = pyo.Expression(expr=dd.loss_cost * energy(loss_mw))
    m.curtail_cost = pyo.Expression(expr=inp.curtail_penalty_cny_per_mwh * energy(curtailed_mw))
    m.obj = pyo.Objective(expr=-m.restored_value + m.switch_cost + m.curtail_cost + m.loss_cost)
