"""A microgrid's restoration feasible set, projected onto its tie line (seed 003).

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

Vertex search (the seed's algorithm) of Omega = {(P, Q): the full model is feasible}: the
support points along the four axes, then along the outward normal of every unconfirmed hull
edge; a point beyond the edge by more than ``threshold_mw`` joins the vertices, else the
edge is a facet. The hull is inside Omega, and Omega inside every facet moved out by the
threshold. One persistent HiGHS; between directions only two costs change (warm start).

Builders return models and never solve; :class:`TieLineProjector` solves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace

import highspy
import numpy as np
import pyomo.environ as pyo

from mgcosim.controllers import blocks
from mgcosim.controllers.errors import OptimisationError
from mgcosim.controllers.solve import FastLP, persistent_highs, solve_optimal
from mgcosim.networks.microgrid_internal import TIERS, MicrogridNetwork
from mgcosim.networks.params import q_per_p

N_SIDES = 12  # sides of the polygon inscribed in each apparent-power circle
AXES = ((1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0))
SAME_POINT_MW = 1e-9
COLLINEAR_MW2 = 1e-10  # cross products below this count as collinear in the hull


class ProjectionError(RuntimeError):
    """The vertex search could not produce a polygon (degenerate set, too many solves)."""


class PreferenceError(ValueError):
    """Preference coefficients that are not one number >= 1 per tier."""


@dataclass(frozen=True)
class MicrogridConditions:
    """What a microgrid faces in the restoration window (one period at constant power)."""

    window_h: float
    load_pu: float  # scale on every internal peak load
    wind_avail_mw: dict[str, float]  # per wind unit
    soc_mwh: float  # storage energy at the window start (the microgrid's total)


def window_conditions(
    net: MicrogridNetwork,
    *,
    window_h: float,
    load_pu: float = 1.0,
    wind_pu: float = 0.5,
    soc_mwh: float | None = None,
) -> MicrogridConditions:
    """Conditions from profile values (wind as a share of each unit's rating)."""
    if not window_h > 0 or load_pu < 0 or wind_pu < 0:
        raise ValueError(
            f"window_h {window_h}, load_pu {load_pu}, wind_pu {wind_pu}: "
            "need window_h > 0 and non-negative profile values"
        )
    return MicrogridConditions(
        window_h=window_h,
        load_pu=load_pu,
        wind_avail_mw={u.name: u.p_max_mw * wind_pu for u in net.units_of("wind")},
        soc_mwh=net.params.ess_e_init_mwh if soc_mwh is None else soc_mwh,
    )


def unit_p_max_mw(net: MicrogridNetwork, cond: MicrogridConditions) -> dict[str, float]:
    """Active-power ceiling of each unit in the window (storage: power and energy)."""
    p = net.params
    ess = net.units_of("ess")
    ess_total = sum(u.p_max_mw for u in ess)
    energy_mw = max(0.0, cond.soc_mwh - p.ess_e_min_mwh) * p.ess_eta_dis / cond.window_h
    out = {}
    for u in net.units:
        if u.kind == "mt":
            out[u.name] = u.p_max_mw
        elif u.kind == "wind":
            out[u.name] = min(u.p_max_mw, cond.wind_avail_mw.get(u.name, 0.0))
        else:
            share = u.p_max_mw / ess_total if ess_total > 0 else 0.0
            out[u.name] = min(u.p_max_mw, energy_mw * share)
    return out


# --- the full model ----------------------------------------------------------------------
def declare_mg_sets(b: pyo.Block, net: MicrogridNetwork) -> None:
    b.N = pyo.Set(initialize=[n.bus for n in net.buses])
    b.E = pyo.Set(initialize=[ln.name for ln in net.lines])
    b.U = pyo.Set(initialize=[u.name for u in net.units])
    b.LD = pyo.Set(initialize=[n.bus for n in net.load_buses])
    b.SIDES = pyo.RangeSet(0, N_SIDES - 1)


def declare_mg_params(b: pyo.Block, net: MicrogridNetwork, cond: MicrogridConditions) -> None:
    bus = {n.bus: n for n in net.buses}
    cap = unit_p_max_mw(net, cond)
    for name, peak in (("load_p", "load_p_mw"), ("load_q", "load_q_mvar")):
        init = {n: getattr(bus[n], peak) * cond.load_pu for n in b.LD}
        b.add_component(name, pyo.Param(b.LD, mutable=True, initialize=init))
    b.unit_p_max = pyo.Param(b.U, mutable=True, initialize=cap)


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
    b.drop = pyo.Constraint(
        b.E,
        rule=lambda _, ln: (
            b.u[line[ln].to_bus]
            == b.u[line[ln].from_bus] - 2 * (line[ln].r_pu * b.p[ln] + line[ln].x_pu * b.q[ln])
        ),
    )
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
    tier = {n.bus: n.tier for n in net.load_buses}
    b.served_mw = pyo.Expression(
        TIERS,
        rule=lambda _, t: pyo.quicksum(b.load_p[n] * b.served[n] for n in b.LD if tier[n] == t),
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


# --- solving: support points and membership -----------------------------------------------
class TieLineProjector:
    """The full model loaded once in a persistent HiGHS; queries change costs or bounds only."""

    def __init__(self, model: pyo.ConcreteModel) -> None:
        self.model = model
        self.solver = persistent_highs()
        solve_optimal(model, self.solver, f"{model.name}: first load")
        self.lp = FastLP(self.solver, f"{model.name} projection")
        self.tie_cols = self.lp.cols([model.tie_p, model.tie_q])
        self._cost_cols = self.tie_cols
        self.n_solves = 1

    def maximise(self, cols: np.ndarray, weights: Iterable[float]) -> np.ndarray:
        """Solve max weights.x[cols] (other costs zero); return all column values."""
        self.lp.set_costs(self._cost_cols, np.zeros(len(self._cost_cols)))
        self.lp.set_costs(cols, -np.asarray(list(weights), float))
        self._cost_cols = cols
        self.n_solves += 1
        return self.lp.run()

    def support(self, direction: tuple[float, float] | np.ndarray) -> np.ndarray:
        """The (P, Q) point of Omega farthest along ``direction``."""
        return self.maximise(self.tie_cols, direction)[self.tie_cols]

    def value_range(self, variables, weights: Iterable[float]) -> tuple[float, float]:
        """min and max of weights.variables over the feasible set (a 1-D projection)."""
        cols = self.lp.cols(variables)
        w = np.asarray(list(weights), float)
        hi = float(w @ self.maximise(cols, w)[cols])
        lo = float(w @ self.maximise(cols, -w)[cols])
        return lo, hi

    def contains(self, p_mw: float, q_mvar: float) -> bool:
        """Is the tie-line point (P, Q) feasible for the full model?"""
        highs, status = self.lp.highs, highspy.HighsModelStatus
        tie, point = (self.model.tie_p, self.model.tie_q), np.array([p_mw, q_mvar], float)
        lower, upper = (np.array([getattr(v, end) for v in tie], float) for end in ("lb", "ub"))
        self.lp.set_costs(self._cost_cols, np.zeros(len(self._cost_cols)))
        highs.changeColsBounds(2, self.tie_cols, point, point)
        self.n_solves += 1
        try:
            highs.setOptionValue("output_flag", False)
            highs.run()
            result = highs.getModelStatus()
        finally:
            highs.changeColsBounds(2, self.tie_cols, lower, upper)
        if result in (status.kInfeasible, status.kUnboundedOrInfeasible):
            return False
        if result != status.kOptimal:
            raise OptimisationError(f"{self.model.name} membership", str(result))
        return True


def is_feasible_point(
    net: MicrogridNetwork, cond: MicrogridConditions, p_mw: float, q_mvar: float
) -> bool:
    """Membership test on a freshly built full model (see :meth:`TieLineProjector.contains`)."""
    return TieLineProjector(build_microgrid_model(net, cond)).contains(p_mw, q_mvar)


# --- the polygon ---------------------------------------------------------------------------
@dataclass(frozen=True)
class TieLineHull:
    """Convex polygon in the tie-line (P, Q) plane: vertices counter-clockwise, facets a.x <= b."""

    vertices: tuple[tuple[float, float], ...]  # (P MW, Q Mvar), import > 0
    normals: tuple[tuple[float, float], ...]  # unit outward normal of the edge from vertex i
    offsets: tuple[float, ...]
    threshold_mw: float
    n_solves: int = 0
    time_s: float = 0.0

    @classmethod
    def from_vertices(cls, vertices, threshold_mw: float, **stats) -> TieLineHull:
        pts = [tuple(map(float, v)) for v in vertices]
        normals, offsets = [], []
        for i, a in enumerate(pts):
            b = pts[(i + 1) % len(pts)]
            dx, dy = b[0] - a[0], b[1] - a[1]
            length = math.hypot(dx, dy)
            n = (dy / length, -dx / length)
            normals.append(n)
            offsets.append(n[0] * a[0] + n[1] * a[1])
        return cls(tuple(pts), tuple(normals), tuple(offsets), threshold_mw, **stats)

    @property
    def area_mw_mvar(self) -> float:
        v = np.asarray(self.vertices)
        x, y = v[:, 0], v[:, 1]
        return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))

    def contains(self, p_mw: float, q_mvar: float, tol_mw: float = 1e-9) -> bool:
        return all(
            a * p_mw + c * q_mvar <= b + tol_mw
            for (a, c), b in zip(self.normals, self.offsets, strict=True)
        )

    def box(self) -> tuple[float, float, float, float]:
        """(P min, P max, Q min, Q max) of the polygon."""
        (p0, q0), (p1, q1) = np.min(self.vertices, axis=0), np.max(self.vertices, axis=0)
        return float(p0), float(p1), float(q0), float(q1)


def convex_hull(points: list[np.ndarray]) -> list[int]:
    """Indices of the hull's vertices, counter-clockwise (monotone chain, collinear dropped)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))

    def cross(o, a, b):
        pa, pb, po = points[a], points[b], points[o]
        return (pa[0] - po[0]) * (pb[1] - po[1]) - (pa[1] - po[1]) * (pb[0] - po[0])

    def chain(indices):
        out: list[int] = []
        for i in indices:
            while len(out) >= 2 and cross(out[-2], out[-1], i) <= COLLINEAR_MW2:
                out.pop()
            out.append(i)
        return out

    lower, upper = chain(order), chain(order[::-1])
    return lower[:-1] + upper[:-1]


def vertex_search(
    projector: TieLineProjector, threshold_mw: float = 1e-3, max_solves: int = 500
) -> TieLineHull:
    """Project the full model onto (P, Q) by vertex search (see the module docstring)."""
    if not threshold_mw > 0:
        raise ValueError(f"threshold_mw must be > 0, got {threshold_mw}")
    start = time.perf_counter()
    first = projector.n_solves
    points: list[np.ndarray] = []

    def add(x: np.ndarray) -> None:
        if all(np.abs(x - p).max() > SAME_POINT_MW for p in points):
            points.append(np.array(x, float))

    for d in AXES:
        add(projector.support(d))
    confirmed: set[tuple[int, int]] = set()
    while True:
        hull = convex_hull(points)
        if len(hull) < 3:
            raise ProjectionError(
                f"{projector.model.name}: the tie-line set is degenerate (hull of "
                f"{len(hull)} points {[tuple(points[i]) for i in hull]})"
            )
        edges = [(i, j) for i, j in zip(hull, hull[1:] + hull[:1], strict=True)]
        todo = [e for e in edges if e not in confirmed]
        if not todo:
            break
        for i, j in todo:
            if projector.n_solves - first >= max_solves:
                raise ProjectionError(f"{projector.model.name}: more than {max_solves} solves")
            d = points[j] - points[i]
            normal = np.array([d[1], -d[0]]) / np.hypot(d[0], d[1])
            x = projector.support(normal)
            if float(normal @ (x - points[i])) > threshold_mw:
                add(x)
            else:
                confirmed.add((i, j))
    return TieLineHull.from_vertices(
        [points[i] for i in hull],
        threshold_mw,
        n_solves=projector.n_solves - first,
        time_s=time.perf_counter() - start,
    )


# --- what the microgrid shares: the virtual node ---------------------------------------------
@dataclass(frozen=True)
class VirtualNodeOffer:
    """Everything a microgrid shares with the DSO (no internal bus, line or unit data).

    The tie-line polygon, 1-D projections of the aggregated internal sources and of the
    served load of each tier (the seed's "overall information of sources and the three load
    tiers"), the load power factor, whether it can form an island's voltage, the PCC voltage
    band it needs, and its preference coefficients theta_j >= 1 (how much it prefers serving
    its own tier-j load from its own sources over a tier-j load outside).
    """

    name: str
    bus_ieee: int
    hull: TieLineHull
    source_p_mw: tuple[float, float]
    source_q_mvar: tuple[float, float]
    tier_max_mw: dict[int, float]
    load_q_per_p: float
    grid_forming: bool
    pcc_v_band_pu: tuple[float, float]
    preference: dict[int, float]

    def with_preference(self, preference: dict[int, float]) -> VirtualNodeOffer:
        check_preference(preference)
        return replace(self, preference=dict(preference))


def check_preference(preference: dict[int, float]) -> None:
    if set(preference) != set(TIERS):
        raise PreferenceError(
            f"preference: give one coefficient per tier {TIERS}, got {preference}"
        )
    bad = {t: v for t, v in preference.items() if not v >= 1}
    if bad:
        raise PreferenceError(
            f"preference {bad}: coefficients must be >= 1 (1 = no preference for own loads)"
        )


def virtual_node_offer(
    net: MicrogridNetwork,
    projector: TieLineProjector,
    hull: TieLineHull,
    preference: dict[int, float],
) -> VirtualNodeOffer:
    """Package the polygon with the 1-D projections at the virtual node."""
    check_preference(preference)
    m = projector.model
    units = list(m.U)
    ones = [1.0] * len(units)
    tier = {n.bus: n.tier for n in net.load_buses}
    tier_max = {}
    for t in TIERS:
        buses = [n for n in m.LD if tier[n] == t]
        loads = [pyo.value(m.load_p[n]) for n in buses]
        tier_max[t] = (
            projector.value_range([m.served[n] for n in buses], loads)[1] if buses else 0.0
        )
    return VirtualNodeOffer(
        name=net.name,
        bus_ieee=net.bus_ieee,
        hull=hull,
        source_p_mw=projector.value_range([m.gen_p[u] for u in units], ones),
        source_q_mvar=projector.value_range([m.gen_q[u] for u in units], ones),
        tier_max_mw=tier_max,
        load_q_per_p=q_per_p(net.params.load_pf),
        grid_forming=net.grid_forming,
        pcc_v_band_pu=net.pcc_v_band_pu,
        preference=dict(preference),
    )


@dataclass(frozen=True)
class Projection:
    """A microgrid's projection: its offer, the projector (for checks) and timings."""

    offer: VirtualNodeOffer
    projector: TieLineProjector
    time_s: float  # build + first load + vertex search + virtual-node ranges
    search_s: float  # vertex search alone


def project_microgrid(
    net: MicrogridNetwork,
    cond: MicrogridConditions,
    preference: dict[int, float],
    threshold_mw: float = 1e-3,
) -> Projection:
    """Build the full model, search the polygon, compute the virtual node's projections."""
    start = time.perf_counter()
    projector = TieLineProjector(build_microgrid_model(net, cond))
    hull = vertex_search(projector, threshold_mw)
    offer = virtual_node_offer(net, projector, hull, preference)
    return Projection(offer, projector, time.perf_counter() - start, hull.time_s)


# --- accuracy checks -------------------------------------------------------------------------
def sample_inside(hull: TieLineHull, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points uniformly inside the polygon (rejection sampling in its bounding box)."""
    p0, p1, q0, q1 = hull.box()
    out: list[tuple[float, float]] = []
    while len(out) < n:
        p, q = rng.uniform(p0, p1), rng.uniform(q0, q1)
        if hull.contains(p, q, tol_mw=-1e-9):
            out.append((p, q))
    return np.asarray(out)


def points_beyond_facets(hull: TieLineHull, distance_mw: float) -> np.ndarray:
    """The midpoint of each facet moved out along its normal by ``distance_mw``."""
    v = np.asarray(hull.vertices)
    mid = 0.5 * (v + np.roll(v, -1, axis=0))
    return mid + distance_mw * np.asarray(hull.normals)


@dataclass(frozen=True)
class AccuracyCheck:
    vertices_feasible: int
    n_vertices: int
    inside_feasible: int
    n_inside: int
    outside_infeasible: int
    n_outside: int
    outside_distance_mw: float

    @property
    def ok(self) -> bool:
        return (
            self.vertices_feasible == self.n_vertices
            and self.inside_feasible == self.n_inside
            and self.outside_infeasible == self.n_outside
        )


def check_accuracy(
    projector: TieLineProjector,
    hull: TieLineHull,
    n_inside: int = 50,
    margin_mw: float = 1e-3,
    seed: int = 3,
) -> AccuracyCheck:
    """Vertices and sampled inside points feasible; points beyond each facet infeasible."""
    inside = sample_inside(hull, n_inside, np.random.default_rng(seed))
    distance = hull.threshold_mw + margin_mw
    outside = points_beyond_facets(hull, distance)
    return AccuracyCheck(
        vertices_feasible=sum(projector.contains(p, q) for p, q in hull.vertices),
        n_vertices=len(hull.vertices),
        inside_feasible=sum(projector.contains(p, q) for p, q in inside),
        n_inside=len(inside),
        outside_infeasible=sum(not projector.contains(p, q) for p, q in outside),
        n_outside=len(outside),
        outside_distance_mw=distance,
    )
