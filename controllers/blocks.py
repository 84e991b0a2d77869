"""Network physics written once, for every model that needs it.

Each ``declare_*`` adds variables or constraints to a Pyomo block; the data it needs
(ratings, per-unit values, incidence) is extracted by the caller and passed in. Sets are
indexed by IEEE branch ``m.L`` and period ``m.T`` as in every model of this library.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

# Tangent points of the loss cuts, per unit of the branch rating (squares of k / 8: dense
# near zero, where most flows are); mirrored for negative flows.
LOSS_CUT_POINTS = np.array([0.0, 1 / 64, 1 / 16, 9 / 64, 1 / 4, 25 / 64, 9 / 16, 49 / 64, 1.0])


def loss_cut_offsets(points: np.ndarray = LOSS_CUT_POINTS) -> np.ndarray:
    """Cut points of both signs, -1 .. 1 (per unit of the rating), from the non-negative
    ``points`` (0 first), mirrored."""
    return np.concatenate([-points[:0:-1], points])


def declare_loss_cuts(
    m: pyo.Block,
    s_max_pu: Mapping[int, float],
    v_hat2: Callable[[int], object],
    ell_p: pyo.Var,
    ell_q: pyo.Var,
    v_from: Callable[[int, int], object] | None = None,
    points: np.ndarray = LOSS_CUT_POINTS,
) -> None:
    """The losses' linear outer approximation: tangent cuts of ``ell_p >= P^2 / v`` and
    ``ell_q >= Q^2 / v`` (``ell = ell_p + ell_q``) at every cut point ``a`` of the flow.

    * ``v_from`` None, the voltage fixed at ``v_hat2(line)`` (a number or a fixed
      parameter): ``v_hat^2 ell_p >= 2 a P - a^2``, exact at the points;
    * ``v_from(line, t)``, the squared voltage at the sending end as a variable: the cone
      cuts :func:`cone_cut` at ``c = a / v_hat2`` (exact at flow ``a`` when
      ``v = v_hat2``), valid at every voltage; :func:`cone_violations` and
      :func:`cone_cut` refine them where a solution lies.

    ``points``: the non-negative tangent points per unit of the rating (0 first), mirrored
    for negative flows (default :data:`LOSS_CUT_POINTS`).
    """
    points = loss_cut_offsets(points)
    m.CUTS = pyo.RangeSet(0, len(points) - 1)

    def cut(flow, part):
        def rule(_, line, t, k):
            a = points[k] * s_max_pu[line]
            if v_from is None:
                return v_hat2(line) * part[line, t] >= 2 * a * flow[line, t] - a * a
            return cone_cut(flow[line, t], part[line, t], v_from(line, t), a / v_hat2(line))

        return rule

    m.cut_p = pyo.Constraint(m.L, m.T, m.CUTS, rule=cut(m.P, ell_p))
    m.cut_q = pyo.Constraint(m.L, m.T, m.CUTS, rule=cut(m.Q, ell_q))


def cone_cut(flow, part, v, ratio: float):
    """Tangent cut ``part >= 2 c flow - c^2 v`` of ``part >= flow^2 / v`` at ``flow / v = c``.

    ``flow^2 / v`` is convex and homogeneous in (flow, v), so its tangent plane depends on the
    ratio ``c`` alone and is valid at every voltage (``v``: squared voltage, a variable).
    """
    return part >= 2 * ratio * flow - ratio * ratio * v


def cone_violations(
    flow: np.ndarray, part: np.ndarray, v: np.ndarray, rel_tol: float, abs_tol: float
) -> np.ndarray:
    """Mask of the points where ``part`` is below ``flow^2 / v`` by more than
    ``rel_tol flow^2 / v + abs_tol`` (arrays of one shape; ``v`` squared voltage > 0)."""
    exact = flow * flow / np.maximum(v, 1e-6)
    return exact - part > rel_tol * exact + abs_tol


# --- radiality -------------------------------------------------------------------------------
def _at(component, first, rest):
    """``component[first, *rest]``, or ``component[first]`` in a single-period model."""
    return component[(first, *rest)] if rest else component[first]


def declare_symmetric_limit(m: pyo.Block, name: str, sets, value, limit) -> None:
    """``name_up``: value <= limit and ``name_dn``: value >= -limit over ``sets``
    (``value(*index)``, ``limit(*index)``: expressions)."""
    m.add_component(f"{name}_up", pyo.Constraint(*sets, rule=lambda _, *i: value(*i) <= limit(*i)))
    m.add_component(f"{name}_dn", pyo.Constraint(*sets, rule=lambda _, *i: value(*i) >= -limit(*i)))


def declare_live_branches(m: pyo.Block, branches, *periods: pyo.Set) -> None:
    """live = alpha * energised_from (linearised), and a closed branch joins buses of equal
    energisation. ``periods``: the period set of a multi-period model, none for one period
    (then ``alpha``, ``live`` and ``energised`` are indexed by branch or bus alone)."""
    br, energised = {b.ieee: b for b in branches}, m.energised

    def on_from(ln, rest):
        return _at(energised, br[ln].from_bus, rest)

    def on_to(ln, rest):
        return _at(energised, br[ln].to_bus, rest)

    def live(ln, rest):
        return _at(m.live, ln, rest)

    def alpha(ln, rest):
        return _at(m.alpha, ln, rest)

    sets = (m.L, *periods)
    m.live_closed = pyo.Constraint(*sets, rule=lambda _, ln, *r: live(ln, r) <= alpha(ln, r))
    m.live_energised = pyo.Constraint(*sets, rule=lambda _, ln, *r: live(ln, r) <= on_from(ln, r))
    m.live_if_both = pyo.Constraint(
        *sets, rule=lambda _, ln, *r: live(ln, r) >= alpha(ln, r) + on_from(ln, r) - 1
    )
    m.same_energisation_up = pyo.Constraint(
        *sets, rule=lambda _, ln, *r: on_from(ln, r) - on_to(ln, r) <= 1 - alpha(ln, r)
    )
    m.same_energisation_dn = pyo.Constraint(
        *sets, rule=lambda _, ln, *r: on_to(ln, r) - on_from(ln, r) <= 1 - alpha(ln, r)
    )


def declare_commodity_vars(m: pyo.Block, n_bus: int, *periods: pyo.Set) -> None:
    """The fictitious commodity of single-commodity-flow radiality: flow ``f`` per branch
    and injection ``inj`` per bus, at most the number of buses."""
    m.f = pyo.Var(m.L, *periods, bounds=(-n_bus, n_bus))
    m.inj = pyo.Var(m.B, *periods, bounds=(0, n_bus))


def declare_grid_forming(
    m: pyo.Block, flags: Mapping[str, tuple], buses, fixed: Callable[..., object], *periods
) -> Callable[..., object]:
    """Grid-forming sources: a flag ``sigma_s`` only on an energised bus, and at most one
    active source at each of ``buses``.

    ``flags``: constraint name -> (sigma, its set, bus of each source); ``fixed(bus, *t)``:
    the sources that need no flag (the substation). Returns ``sources(bus, *t)``, the number
    of active sources at a bus, for :func:`declare_commodity_flow`.
    """
    for name, (sigma, index, bus_of) in flags.items():

        def on(_, s, *r, sigma=sigma, bus_of=bus_of):
            return _at(sigma, s, r) <= _at(m.energised, bus_of[s], r)

        m.add_component(name, pyo.Constraint(index, *periods, rule=on))

    def sources(bus, *r):
        flagged = (_at(sg, s, r) for sg, index, at in flags.values() for s in index if at[s] == bus)
        return sum(flagged) + fixed(bus, *r)

    m.one_source_per_bus = pyo.Constraint(
        buses, *periods, rule=lambda _, b, *r: sources(b, *r) <= 1
    )
    return sources


def declare_commodity_flow(
    m: pyo.Block, branches, n_bus: int, sources: Callable[..., object], *periods: pyo.Set
) -> None:
    """Single-commodity flow with virtual sources (seed 002): islands, one source each.

    Every energised bus consumes ``energised_b - sources_b`` units of the commodity, which only
    sources inject (``inj <= N sources``) and which moves only on live branches, and
    ``sum live = sum (energised - sources)``: each energised component holds exactly one source and
    is a tree. ``sources(bus, *t)`` is the number of active sources at a bus (an
    expression); ``periods`` as in :func:`declare_live_branches`.
    """
    br, energised = {b.ieee: b for b in branches}, m.energised
    buses = (m.B, *periods)
    lines = (m.L, *periods)
    m.f_up = pyo.Constraint(
        *lines, rule=lambda _, ln, *r: _at(m.f, ln, r) <= n_bus * _at(m.live, ln, r)
    )
    m.f_dn = pyo.Constraint(
        *lines, rule=lambda _, ln, *r: _at(m.f, ln, r) >= -n_bus * _at(m.live, ln, r)
    )
    m.inj_src = pyo.Constraint(
        *buses, rule=lambda _, b, *r: _at(m.inj, b, r) <= n_bus * sources(b, *r)
    )

    def consume(_, bus, *r):
        inflow = sum(_at(m.f, ln, r) for ln in m.L if br[ln].to_bus == bus)
        outflow = sum(_at(m.f, ln, r) for ln in m.L if br[ln].from_bus == bus)
        return inflow - outflow + _at(m.inj, bus, r) == _at(energised, bus, r) - sources(bus, *r)

    m.consume = pyo.Constraint(*buses, rule=consume)

    def count(_, *r):
        live = sum(_at(m.live, ln, r) for ln in m.L)
        return live == sum(_at(energised, b, r) - sources(b, *r) for b in m.B)

    if periods:
        m.count = pyo.Constraint(*periods, rule=count)
    else:
        m.count = pyo.Constraint(expr=count(m))


# --- switching -------------------------------------------------------------------------------
def declare_switch_actions(
    m: pyo.Block, previous: Callable[[int, int], object], budget: object | None = None
) -> None:
    """Switching actions ``sw >= |alpha_t - alpha_t-1|`` (``previous(line, t)``: the state
    before period t) and, unless ``budget`` is None, ``sum sw <= budget`` over the horizon."""
    m.sw_up = pyo.Constraint(
        m.L, m.T, rule=lambda _, ln, t: m.sw[ln, t] >= m.alpha[ln, t] - previous(ln, t)
    )
    m.sw_dn = pyo.Constraint(
        m.L, m.T, rule=lambda _, ln, t: m.sw[ln, t] >= previous(ln, t) - m.alpha[ln, t]
    )
    if budget is not None:
        m.budget = pyo.Constraint(
            expr=pyo.quicksum(m.sw[ln, t] for ln in m.L for t in m.T) <= budget
        )


# --- units -----------------------------------------------------------------------------------
def declare_ramp_limits(
    m: pyo.Block,
    output: pyo.Var,
    before: Callable[..., object],
    limit_mw: Callable[..., object],
    *sets: pyo.Set,
) -> None:
    """Turbine ramps ``|mt - mt_before| <= limit``, with ``before(*index)`` the output of the
    previous period (None: no limit at that index) and ``limit_mw(*index)`` the ramp over
    one period (rate times period length)."""

    def ramp(sign):
        def rule(_, *index):
            prev = before(*index)
            if prev is None:
                return pyo.Constraint.Skip
            return sign * (output[index] - prev) <= limit_mw(*index)

        return rule

    m.ramp_up = pyo.Constraint(*sets, rule=ramp(1))
    m.ramp_dn = pyo.Constraint(*sets, rule=ramp(-1))


# --- power flow ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Incidence:
    """The branches into (``to_bus``) and out of (``from_bus``) each bus, in branch order:
    extracted once from the branch list and passed to every balance."""

    into: dict[int, list[int]]
    out_of: dict[int, list[int]]

    @classmethod
    def of(cls, branches, buses, key: str = "ieee") -> Incidence:
        """Branches named by their attribute ``key``."""
        return cls(
            into={b: [getattr(br, key) for br in branches if br.to_bus == b] for b in buses},
            out_of={b: [getattr(br, key) for br in branches if br.from_bus == b] for b in buses},
        )


def net_inflow(flow: pyo.Var, inc: Incidence, bus: int, *rest) -> object:
    """Power flowing into ``bus`` minus power flowing out (``rest``: the period, if any)."""
    return sum(_at(flow, ln, rest) for ln in inc.into[bus]) - sum(
        _at(flow, ln, rest) for ln in inc.out_of[bus]
    )


def declare_bus_balance(
    m: pyo.Block, name: str, inc: Incidence, flow, supply, demand, buses, *periods
) -> None:
    """DistFlow balance ``name``: inflow - outflow + supply == demand at every bus
    (``supply(bus, *t)``: the bus's injections, ``demand(bus, *t)``: its withdrawals)."""

    def rule(_, bus, *r):
        return net_inflow(flow, inc, bus, *r) + supply(bus, *r) == demand(bus, *r)

    m.add_component(name, pyo.Constraint(buses, *periods, rule=rule))


def declare_voltage_drop(
    m: pyo.Block,
    branches,
    gate: Callable[..., object],
    big_m: float,
    lines: pyo.Set,
    *periods: pyo.Set,
    ell: Callable[..., object] | None = None,
) -> None:
    """DistFlow voltage drop on every branch, relaxed by big-M where the branch is off:
    ``|v_j - v_i + 2 (r P + x Q) - (r^2 + x^2) ell| <= M (1 - gate)``.

    ``gate(line, *t)`` is the branch state (a fixed parameter, a binary switch or the
    live-branch variable); ``ell(line, *t)`` the squared current, or None for the lossless
    (LinDistFlow) drop. ``m`` holds ``v``, ``P`` and ``Q``; ``periods`` as in
    :func:`declare_live_branches`.
    """
    br = {b.ieee: b for b in branches}

    def drop(ln, rest):
        b = br[ln]
        expr = (
            _at(m.v, b.to_bus, rest)
            - _at(m.v, b.from_bus, rest)
            + 2 * (b.r_pu * _at(m.P, ln, rest) + b.x_pu * _at(m.Q, ln, rest))
        )
        if ell is not None:
            expr = expr - (b.r_pu**2 + b.x_pu**2) * ell(ln, *rest)
        return expr

    declare_symmetric_limit(
        m,
        "drop",
        (lines, *periods),
        lambda ln, *r: drop(ln, r),
        lambda ln, *r: big_m * (1 - gate(ln, *r)),
    )


def declare_flow_limits(
    m: pyo.Block,
    s_max_pu: Mapping[int, float],
    gate: Callable[..., object],
    lines: pyo.Set,
    *periods: pyo.Set,
) -> None:
    """``|P|, |Q| <= S_max gate`` on every branch: nothing flows through an open or dead
    branch (``gate`` as in :func:`declare_voltage_drop`)."""
    for name, flow in (("p_on", m.P), ("q_on", m.Q)):
        declare_symmetric_limit(
            m,
            name,
            (lines, *periods),
            lambda ln, *r, fl=flow: _at(fl, ln, r),
            lambda ln, *r: s_max_pu[ln] * gate(ln, *r),
        )


# --- units -----------------------------------------------------------------------------------
def declare_pv_power_factor(m: pyo.Block, tan_phi: Mapping[str, float], *periods: pyo.Set) -> None:
    """PV reactive power within its power factor: ``|q_pv| <= tan(acos pf_min) p_pv``."""
    declare_symmetric_limit(
        m,
        "pv_q",
        (m.PV, *periods),
        lambda p, *r: _at(m.qpv, p, r),
        lambda p, *r: tan_phi[p] * _at(m.pv, p, r),
    )


# --- restoration blocks ----------------------------------------------------------------------
def declare_soc_dynamics(
    m: pyo.Block,
    name: str,
    soc: pyo.Var,
    before: Callable[..., object],
    change: Callable[..., object],
    *sets: pyo.Set,
) -> None:
    """Storage energy ``soc = before + change`` at every index of ``sets``: ``before(*i)`` the
    energy at the period start (initial value or previous period), ``change(*i)`` the energy
    charged less discharged over the period (:func:`networks.storage.energy_change_mwh`)."""

    def rule(_, *i):
        return _at(soc, i[0], i[1:]) == before(*i) + change(*i)

    m.add_component(name, pyo.Constraint(*sets, rule=rule))


def declare_load_pickup(m: pyo.Block, *periods: pyo.Set) -> None:
    """Load pickup ``x_b <= energised_b`` (only on an energised bus) over the loads ``m.D`` and,
    over several periods, monotone: ``x_b,t >= x_b,t-1`` (a restored load stays)."""
    m.pickup_energised = pyo.Constraint(
        m.D, *periods, rule=lambda _, b, *r: _at(m.x, b, r) <= _at(m.energised, b, r)
    )
    if periods:
        m.x_monotone = pyo.Constraint(
            m.D,
            *periods,
            rule=lambda _, b, t: m.x[b, t] >= m.x[b, t - 1] if t > 0 else pyo.Constraint.Skip,
        )
