"""A microgrid's restoration feasible set, projected onto its tie line (seed 003).

The set is that of the microgrid's full model (:mod:`controllers.projection_model`; its
inputs and the resulting polygon and offer: :mod:`controllers.projection_data`).

Vertex search (the seed's algorithm) of Omega = {(P, Q): the full model is feasible}: the
support points along the four axes, then along the outward normal of every unconfirmed hull
edge; a point beyond the edge by more than ``threshold_mw`` joins the vertices, else the
edge is a facet. The hull is inside Omega, and Omega inside every facet moved out by the
threshold. One persistent HiGHS; between directions only two costs change (warm start).

Builders return models and never solve; :class:`TieLineProjector` solves.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import highspy
import numpy as np
import pyomo.environ as pyo

from mgcosim.controllers.errors import OptimisationError
from mgcosim.controllers.projection_data import (
    MicrogridConditions,
    TieLineHull,
    VirtualNodeOffer,
    check_preference,
)
from mgcosim.controllers.projection_model import build_microgrid_model
from mgcosim.controllers.solve import FastLP, persistent_highs, solve_optimal
from mgcosim.networks.microgrid_internal import TIERS, MicrogridNetwork
from mgcosim.networks.params import q_per_p

AXES = ((1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0))
SAME_POINT_MW = 1e-9
COLLINEAR_MW2 = 1e-10  # cross products below this count as collinear in the hull


class ProjectionError(RuntimeError):
    """The vertex search could not produce a polygon (degenerate set, too many solves)."""


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


# --- the polygon: vertex search ----------------------------------------------------------
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
        edges = zip(hull, hull[1:] + hull[:1], strict=True)
        if not (todo := [e for e in edges if e not in confirmed]):
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
    tier_max = dict.fromkeys(TIERS, 0.0)
    for t, loads_of_tier in net.loads_by_tier().items():
        if buses := [n.bus for n in loads_of_tier]:
            loads = [pyo.value(m.load_p[n]) for n in buses]
            tier_max[t] = projector.value_range([m.served[n] for n in buses], loads)[1]
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
