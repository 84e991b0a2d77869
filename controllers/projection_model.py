"""A microgrid's full restoration model on its internal network, for the tie-line projection.

Per unit with S_base = 1 MVA; one window of ``window_h`` hours at constant power; tie-line
(P, Q) > 0 when the microgrid imports. The microgrid's full model on its internal network
(:mod:`networks.microgrid_internal`):

* units: turbines 0 .. p_max; storage discharging only, 0 .. min(p_max, (E0 - E_min)
  eta_dis / window_h) (charging restores nothing within one window, and leaving it out
  keeps the virtual flow of :mod:`controllers.coordinated` well defined); wind 0 ..
  available; reactive power |q| <= q_max;
* loads: a continuous served fraction in [0, 1] per load bus, Q at the load's power factor,
  so the set is a polytope and its projection a convex polygon;
* LinDistFlow from the PCC bus: balance per bus, u_to = u_from - 2 (r p + x q) with u_n =
  v_n^2 - v_pcc^2; the internal band held for any PCC voltage in the PCC band,
  V_min^2 - V_pcc_min^2 <= u_n <= V_max^2 - V_pcc_max^2, so (P, Q) is the only coupling;
* p^2 + q^2 <= S_max^2 of lines and tie line by the inscribed 12-gon (inner, so safe);
  |P|, |Q| <= ``pcc_p_max_mw``.

Builders return models and never solve; :class:`controllers.projection.TieLineProjector`
solves.
"""

from __future__ import annotations

import math

import pyomo.environ as pyo

from mgcosim.controllers import blocks
from mgcosim.controllers.projection_data import MicrogridConditions, unit_p_max_mw
from mgcosim.networks.microgrid_internal import TIERS, MicrogridNetwork

N_SIDES = 12  # sides of the polygon inscribed in each apparent-power circle


# --- the full model ----------------------------------------------------------------------
def declare_mg_sets(b: pyo.Block, net: MicrogridNetwork) -> None:
    b.N = pyo.Set(initialize=[n.bus for n in net.buses])
    b.E = pyo.Set(initialize=[ln.name for ln in net.lines])
    b.U = pyo.Set(initialize=[u.name for u in net.units])
    b.LD = pyo.Set(initialize=[n.bus for n in net.load_buses])
    b.SIDES = pyo.RangeSet(0, N_SIDES - 1)


def declare_mg_params(b: pyo.Block, net: MicrogridNetwork, cond: MicrogridConditions) -> None:
    bus = {n.bus: n for n in net.buses}
    for name, peak in (("load_p", "load_p_mw"), ("load_q", "load_q_mvar")):
        init = {n: getattr(bus[n], peak) * cond.load_pu for n in b.LD}
        b.add_component(name, pyo.Param(b.LD, mutable=True, initialize=init))
    b.unit_p_max = pyo.Param(b.U, mutable=True, initialize=unit_p_max_mw(net, cond))


def declare_mg_vars(b: pyo.Block, net: MicrogridNetwork) -> None:
    lim = net.params.pcc_p_max_mw
    q_max = {u.name: u.q_max_mvar for u in net.units}
    s_max = {ln.name: ln.s_max_mva for ln in net.lines}
    b.tie_p = pyo.Var(bounds=(-lim, lim))  # import > 0
    b.tie_q = pyo.Var(bounds=(-lim, lim))
    b.p = pyo.Var(b.E, bounds=lambda _, ln: (-s_max[ln], s_max[ln]))
    b.q = pyo.Var(b.E, bounds=lambda _, ln: (-s_max[ln], s_max[ln]))
    b.u = pyo.Var(b.N)  # squared-voltage deviation from the PCC
    b.gen_p = pyo.Var(b.U, within=pyo.NonNegativeReals)  # injection; storage discharges
    b.gen_q = pyo.Var(b.U, bounds=lambda _, u: (-q_max[u], q_max[u]))
    b.served = pyo.Var(b.LD, bounds=(0.0, 1.0))  # served fraction


def declare_mg_units(b: pyo.Block) -> None:
    b.gen_cap = pyo.Constraint(b.U, rule=lambda _, u: b.gen_p[u] <= b.unit_p_max[u])


def declare_mg_balance(b: pyo.Block, net: MicrogridNetwork) -> None:
    inc = blocks.Incidence.of(net.lines, b.N, key="name")
    units_at = {n: [u.name for u in net.units if u.bus == n] for n in b.N}

    def balance(name, flow, gen, tie, load):
        def supply(n):
            units = sum(gen[u] for u in units_at[n])
            return units + tie if n == net.pcc_bus else units

        def served(n):
            return load[n] * b.served[n] if n in b.LD else 0.0

        blocks.declare_bus_balance(b, name, inc, flow, supply, served, b.N)

    balance("balance_p", b.p, b.gen_p, b.tie_p, b.load_p)
    balance("balance_q", b.q, b.gen_q, b.tie_q, b.load_q)


def declare_mg_voltage(b: pyo.Block, net: MicrogridNetwork) -> None:
    """LinDistFlow drops; the internal band held for any PCC voltage in the PCC band."""
    lo, hi = net.pcc_v_band_pu
    bus = {n.bus: n for n in net.buses}
    line = {ln.name: ln for ln in net.lines}
    b.u[net.pcc_bus].fix(0.0)

    def drop(_, ln):  # u_to = u_from - 2 (r p + x q)
        br = line[ln]
        return b.u[br.to_bus] == b.u[br.from_bus] - 2 * (br.r_pu * b.p[ln] + br.x_pu * b.q[ln])

    b.drop = pyo.Constraint(b.E, rule=drop)
    inner = [n for n in b.N if n != net.pcc_bus]
    b.u_min = pyo.Constraint(inner, rule=lambda _, n: b.u[n] >= bus[n].v_min_pu ** 2 - lo**2)
    b.u_max = pyo.Constraint(inner, rule=lambda _, n: b.u[n] <= bus[n].v_max_pu ** 2 - hi**2)


def circle_sides(p, q, s_max: float, k: int):
    """Side k of the N_SIDES-gon inscribed in p^2 + q^2 <= s_max^2."""
    angle = 2 * math.pi * k / N_SIDES
    return math.cos(angle) * p + math.sin(angle) * q <= s_max * math.cos(math.pi / N_SIDES)


def declare_mg_apparent_limits(b: pyo.Block, net: MicrogridNetwork) -> None:
    s_max = {ln.name: ln.s_max_mva for ln in net.lines}
    b.line_s = pyo.Constraint(
        b.E, b.SIDES, rule=lambda _, ln, k: circle_sides(b.p[ln], b.q[ln], s_max[ln], k)
    )
    b.tie_s = pyo.Constraint(
        b.SIDES, rule=lambda _, k: circle_sides(b.tie_p, b.tie_q, net.pcc_s_max_mva, k)
    )


def declare_mg_value(b: pyo.Block, net: MicrogridNetwork) -> None:
    """Served load per tier (MW) and its weighted sum (the microgrid's own objective)."""
    by_tier = net.loads_by_tier()
    b.served_mw = pyo.Expression(
        TIERS, rule=lambda _, t: pyo.quicksum(b.load_p[n.bus] * b.served[n.bus] for n in by_tier[t])
    )
    b.own_value = pyo.Expression(
        expr=pyo.quicksum(net.tier_weight[t] * b.served_mw[t] for t in TIERS)
    )


def add_microgrid(b: pyo.Block, net: MicrogridNetwork, cond: MicrogridConditions) -> pyo.Block:
    """Populate block ``b`` with the microgrid's full restoration model (no objective)."""
    declare_mg_sets(b, net)
    declare_mg_params(b, net, cond)
    declare_mg_vars(b, net)
    declare_mg_units(b)
    declare_mg_balance(b, net)
    declare_mg_voltage(b, net)
    declare_mg_apparent_limits(b, net)
    declare_mg_value(b, net)
    return b


def build_microgrid_model(net: MicrogridNetwork, cond: MicrogridConditions) -> pyo.ConcreteModel:
    """The full model with the objective max dir.(P, Q) + own_weight * own value.

    ``dir_p``, ``dir_q`` and ``own_weight`` are mutable (0 at start): the projection sets the
    direction; the lower level fixes (P, Q) and sets ``own_weight`` to 1.
    """
    m = add_microgrid(pyo.ConcreteModel(name=f"{net.name}_full"), net, cond)
    m.dir_p = pyo.Param(mutable=True, initialize=0.0)
    m.dir_q = pyo.Param(mutable=True, initialize=0.0)
    m.own_weight = pyo.Param(mutable=True, initialize=0.0)
    m.obj = pyo.Objective(  # minimised: the negated value
        expr=-(m.dir_p * m.tie_p + m.dir_q * m.tie_q + m.own_weight * m.own_value)
    )
    return m
