"""DSO topology planning: loss-minimising reconfiguration over one or a few periods.

Both ways use the DSO model of :mod:`controllers.dso` with the microgrid exchanges fixed:

* :func:`solve_reconfiguration`: the binary multi-period MILP (spanning-tree radiality,
  switching budget), exact up to the MIP gap but slow in the number of periods;
* the time decomposition of DESIGN.md section 6 (:func:`plan_by_candidates`): a few radial
  candidates (:func:`candidate_topologies`, cacheable across horizons), their cost per
  period (:func:`period_costs`, one fixed-topology LP each) and a dynamic programme over
  (period, candidate, actions used) (:func:`schedule_topologies`), exact within them.

Inputs per period: DSO loads = nominal x ``load_scale[t]``, PV available ``pv_mw``,
microgrid import ``pm_mw`` (MW, 0 when not given) and ``mg_q_mvar``; CNY, hourly periods.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pyomo.environ as pyo

from mgcosim.controllers import dso
from mgcosim.controllers.dso import DSOData
from mgcosim.controllers.errors import InfeasibleError
from mgcosim.controllers.loss_cuts import RECONFIG_CUTS, CutSettings, TightSolve, solve_tight
from mgcosim.controllers.solve import MipLimits, highs_solver, last_binaries, solve_mip

Closed = dict[int, bool]
Profiles = dict[str, np.ndarray]
# the DSO's reconfiguration MILPs: proven within 1e-4, at most 10 000 nodes (deterministic)
RECONFIG_LIMITS = MipLimits(rel_gap=1e-4, node_limit=10_000)


@dataclass(frozen=True)
class ReconfigResult:
    """Switch states per period and the figures of the solve that chose them."""

    closed: list[Closed]  # per period: IEEE branch -> closed
    objective: float  # CNY: losses + curtailment + switching
    best_bound: float | None  # proven lower bound (None: not a bound-producing method)
    status: str
    solve_time_s: float
    model_losses_mw: list[float]  # per period, sum of r * ell
    v_pu: list[dict[int, float]]  # per period, model voltage magnitude per IEEE bus
    switch_actions: int  # from the initial topology through the last period
    cut_rounds: int = 0  # Kelley re-solves of the last solve (controllers.loss_cuts)
    cone_violation: float = 0.0  # largest relative shortfall of the losses below the cone

    @property
    def open_branches(self) -> list[list[int]]:
        """Sorted IEEE numbers of the open branches, per period."""
        return [open_set(c) for c in self.closed]

    @property
    def gap(self) -> float | None:
        """Relative gap between objective and best bound (None without a bound)."""
        if self.best_bound is None:
            return None
        return (self.objective - self.best_bound) / max(abs(self.objective), 1e-9)


@dataclass(frozen=True)
class _Inputs:
    load_scale: np.ndarray
    pm_mw: Profiles
    pv_mw: Profiles
    mg_q_mvar: Profiles

    @property
    def n_periods(self) -> int:
        return len(self.load_scale)

    def at(self, t: int) -> _Inputs:
        """The single period t."""

        def cut(p: Profiles) -> Profiles:
            return {k: v[t : t + 1] for k, v in p.items()}

        return _Inputs(
            self.load_scale[t : t + 1], cut(self.pm_mw), cut(self.pv_mw), cut(self.mg_q_mvar)
        )


# --- small public helpers ------------------------------------------------------------------
def open_set(closed: Closed) -> list[int]:
    """Sorted IEEE numbers of the open branches."""
    return sorted(line for line, on in closed.items() if not on)


def switch_actions(a: Closed, b: Closed) -> int:
    """Number of branches whose state differs between topologies ``a`` and ``b``."""
    return sum(1 for line in a if bool(a[line]) != bool(b[line]))


def path_actions(initial: Closed, closed: Sequence[Closed]) -> int:
    """Switching actions from ``initial`` through every topology of ``closed``."""
    path = [initial, *closed]
    return sum(switch_actions(a, b) for a, b in zip(path, path[1:], strict=False))


def branch_exchanges(dd: DSOData, closed: Closed) -> list[Closed]:
    """Radial topologies one branch exchange from radial ``closed``: close one open branch,
    open another branch of the loop that closes (sorted by the pair, no repeats)."""
    br = {b.ieee: b for b in dd.branches}
    out: list[Closed] = []
    for tie in open_set(closed):
        for line in _loop(br, closed, br[tie].from_bus, br[tie].to_bus):
            out.append({**closed, tie: True, line: False})
    return out


def _loop(br: dict, closed: Closed, start: int, goal: int) -> list[int]:
    """Branches of the path from bus ``start`` to bus ``goal`` over closed branches."""
    graph = nx.Graph()
    graph.add_edges_from((b.from_bus, b.to_bus, {"line": ln}) for ln, b in br.items() if closed[ln])
    try:
        path = nx.shortest_path(graph, start, goal)
    except (nx.NodeNotFound, nx.NetworkXNoPath):
        return []
    return [graph.edges[a, b]["line"] for a, b in zip(path, path[1:], strict=False)]


def action_matrix(candidates: Sequence[Closed]) -> np.ndarray:
    """[C, C] switching actions between every pair of candidates."""
    return np.array([[switch_actions(a, b) for b in candidates] for a in candidates], dtype=int)


def level_periods(load_scale: np.ndarray) -> list[int]:
    """Periods of the valley, flat (closest to the mean) and peak load, without repeats."""
    ls = np.asarray(load_scale, dtype=float)
    picks = [int(np.argmin(ls)), int(np.argmin(np.abs(ls - ls.mean()))), int(np.argmax(ls))]
    return list(dict.fromkeys(picks))


# --- data into a model ---------------------------------------------------------------------
def _inputs(dd: DSOData, load_scale, pm_mw, pv_mw, mg_q_mvar) -> _Inputs:
    ls = np.atleast_1d(np.asarray(load_scale, dtype=float))
    if ls.ndim != 1 or ls.size == 0:
        raise ValueError(f"load_scale must be a non-empty 1-D array, got shape {ls.shape}")

    def profiles(given: dict | None, names, what: str) -> Profiles:
        given = given or {}
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ValueError(f"{what}: unknown unit {unknown[0]!r} (known: {sorted(names)})")
        out = {n: np.asarray(given.get(n, np.zeros(ls.size)), dtype=float) for n in names}
        for n, v in out.items():
            if v.shape != ls.shape:
                raise ValueError(f"{what}[{n!r}] has {v.size} periods, load_scale {ls.size}")
        return out

    return _Inputs(
        ls,
        profiles(pm_mw, dd.mg_bus, "pm_mw"),
        profiles(pv_mw, dd.pv_bus, "pv_mw"),
        profiles(mg_q_mvar, dd.mg_bus, "mg_q_mvar"),
    )


def _model(dd: DSOData, inp: _Inputs, binary: bool = False) -> pyo.ConcreteModel:
    """The DSO model of the inputs' horizon, the inputs set."""
    m = dso.build_dso_model(dd, inp.n_periods, binary)
    _set_inputs(m, dd, inp)
    return m


def _set_inputs(m: pyo.ConcreteModel, dd: DSOData, inp: _Inputs) -> None:
    dso.set_loads(m, dd, inp.load_scale)
    dso.set_pv(m, inp.pv_mw)
    dso.set_mg_q(m, inp.mg_q_mvar)
    for g in m.M:
        for t in m.T:
            m.pm[g, t].fix(float(inp.pm_mw[g][t]))


def set_fixed_inputs(
    m: pyo.ConcreteModel,
    dd: DSOData,
    load_scale: np.ndarray,
    pm_mw: dict[str, np.ndarray] | None = None,
    pv_mw: dict[str, np.ndarray] | None = None,
    mg_q_mvar: dict[str, np.ndarray] | None = None,
) -> None:
    """Put one case's inputs (as :func:`solve_reconfiguration` takes them) into a DSO model,
    the microgrid exchanges fixed."""
    _set_inputs(m, dd, _inputs(dd, load_scale, pm_mw, pv_mw, mg_q_mvar))


def _describe(dd: DSOData, inp: _Inputs, extra: str = "") -> str:
    demand = [
        sum(dd.load_p_nom_mw.values()) * s + sum(p[t] for p in inp.pm_mw.values())
        for t, s in enumerate(inp.load_scale)
    ]
    return (
        f"DSO {extra}over {inp.n_periods} period(s) (peak demand {max(demand):.3f} MW "
        f"incl. microgrid imports, substation limit {dd.substation_p_max_mw:g} MW, "
        f"voltage band [{dd.v_min_pu:g}, {dd.v_max_pu:g}] pu)"
    )


# --- solving -------------------------------------------------------------------------------
def _solve(
    m: pyo.ConcreteModel,
    dd: DSOData,
    what: str,
    limits: MipLimits,
    solver=None,
    cuts: CutSettings = RECONFIG_CUTS,
) -> TightSolve:
    """Solve with HiGHS, refined by loss cuts until the cone holds, and load the solution,
    or raise a named error.

    Every MIP solve of a model after its first (a Kelley round, or the next case loaded
    into the same model) starts from the model's last switch states (:func:`solve_mip`
    then skips HiGHS's sub-MIP heuristics). The default data's candidates take 0.58 of
    the cold solves' time, the same topologies (``benchmarks/bench_candidates.py``).
    """
    solver = solver if solver is not None else highs_solver()

    def solve():
        return solve_mip(m, solver, what, limits, last_binaries(m))

    return solve_tight(m, dd, solve, solver, cuts)


def _period_losses(m: pyo.ConcreteModel, dd: DSOData, t: int) -> float:
    return float(sum(b.r_pu * pyo.value(dso.ell(m, b.ieee, t)) for b in dd.branches))


def _period_cost(m: pyo.ConcreteModel, dd: DSOData, t: int) -> float:
    """Loss and curtailment cost (CNY) of period t in a solved model."""
    curtailed = sum(pyo.value(m.pv_avail[p, t] - m.pv[p, t]) for p in m.PV)
    return float(pyo.value(m.dt_h)) * (
        dd.loss_cost * _period_losses(m, dd, t) + dd.curtail_cost * curtailed
    )


def _voltages(m: pyo.ConcreteModel, t: int) -> dict[int, float]:
    return {int(b): float(np.sqrt(max(pyo.value(m.v[b, t]), 0.0))) for b in m.B}


def _result(
    m,
    dd: DSOData,
    solved: TightSolve,
    closed: list[Closed],
    initial: Closed,
    best_bound: float | None,
    objective: float | None = None,
) -> ReconfigResult:
    return ReconfigResult(
        closed=closed,
        objective=solved.record.objective if objective is None else objective,
        best_bound=best_bound,
        status=solved.record.status,
        solve_time_s=solved.record.time_s,
        model_losses_mw=[_period_losses(m, dd, t) for t in m.T],
        v_pu=[_voltages(m, t) for t in m.T],
        switch_actions=path_actions(initial, closed),
        cut_rounds=solved.rounds,
        cone_violation=solved.max_rel_violation,
    )


# --- the monolithic MILP -------------------------------------------------------------------
def solve_reconfiguration(
    dd: DSOData,
    load_scale: np.ndarray,
    pm_mw: dict[str, np.ndarray] | None,
    pv_mw: dict[str, np.ndarray] | None,
    initial: Closed,
    budget: int,
    limits: MipLimits = RECONFIG_LIMITS,
    mg_q_mvar: dict[str, np.ndarray] | None = None,
    cuts: CutSettings = RECONFIG_CUTS,
) -> ReconfigResult:
    """Loss-minimising reconfiguration: the binary multi-period DSO MILP, solved by HiGHS.

    Switching cost ``dd.switch_cost`` per action, at most ``budget`` actions counted from
    ``initial``. At the node limit of ``limits`` the incumbent is returned (status
    ``node_limit``, with its best bound). Raises :class:`InfeasibleError` when no
    radial topology serves the inputs, :class:`OptimisationError` without a usable solution.
    """
    inp = _inputs(dd, load_scale, pm_mw, pv_mw, mg_q_mvar)
    m = _model(dd, inp, binary=True)
    dso.set_initial_topology(m, initial)
    m.switch_budget = int(budget)
    what = _describe(dd, inp, f"reconfiguration (switching budget {budget}) ")
    solved = _solve(m, dd, what, limits, cuts=cuts)
    closed = [dso.closed_branches(m, t) for t in m.T]
    return _result(m, dd, solved, closed, initial, solved.record.bound)


# --- time decomposition: candidates, period costs, dynamic programme ------------------------
def candidate_topologies(
    dd: DSOData,
    load_scale: np.ndarray,
    pm_mw: dict[str, np.ndarray] | None = None,
    pv_mw: dict[str, np.ndarray] | None = None,
    mg_q_mvar: dict[str, np.ndarray] | None = None,
    periods: Sequence[int] | None = None,
    initial: Closed | None = None,
    reach: Sequence[int] = (),
    limits: MipLimits = RECONFIG_LIMITS,
) -> list[Closed]:
    """Radial candidates: the default (and ``initial``) topology plus, for each of
    ``periods`` (default: :func:`level_periods`), the single-period loss-minimising topology
    (switch cost 0, no budget) and, for each k in ``reach``, the best one within k switching
    actions of ``initial`` (default: the default topology).

    Duplicates are dropped; a period whose single-period problem is infeasible adds nothing.
    Without ``reach`` the result does not depend on the current topology, so callers may
    cache it across rolling horizons.
    """
    inp = _inputs(dd, load_scale, pm_mw, pv_mw, mg_q_mvar)
    default = dso.default_topology(dd)
    initial = default if initial is None else initial
    free = dataclasses.replace(dd, switch_cost=0.0)
    m, solver = dso.build_dso_model(free, 1, binary=True), highs_solver()
    found = [default, initial]
    for t in level_periods(inp.load_scale) if periods is None else periods:
        _set_inputs(m, free, inp.at(t))
        for start, budget in [(default, 2 * len(dd.branches)), *((initial, k) for k in reach)]:
            dso.set_initial_topology(m, start)
            m.switch_budget = int(budget)
            what = _describe(dd, inp.at(t), f"candidate of period {t} (budget {budget}) ")
            try:
                _solve(m, free, what, limits, solver)
            except InfeasibleError:
                continue
            found.append(dso.closed_branches(m, 0))
    unique: dict[tuple[int, ...], Closed] = {}
    for closed in found:
        unique.setdefault(tuple(open_set(closed)), closed)
    return list(unique.values())


def period_costs(
    dd: DSOData,
    candidates: Sequence[Closed],
    load_scale: np.ndarray,
    pm_mw: dict[str, np.ndarray] | None = None,
    pv_mw: dict[str, np.ndarray] | None = None,
    mg_q_mvar: dict[str, np.ndarray] | None = None,
    limits: MipLimits = RECONFIG_LIMITS,
) -> np.ndarray:
    """[T, C] DSO cost (CNY: losses + curtailment) of each candidate in each period.

    One fixed-topology LP per candidate covers all periods; when it is infeasible the
    periods are solved one by one and the infeasible (period, candidate) pairs get +inf.
    """
    inp = _inputs(dd, load_scale, pm_mw, pv_mw, mg_q_mvar)
    m = _model(dd, inp)
    solver, single = highs_solver(), None
    costs = np.full((inp.n_periods, len(candidates)), np.inf)
    for c, closed in enumerate(candidates):
        dso.set_topology(m, closed)
        try:
            _solve(m, dd, _describe(dd, inp, "fixed topology "), limits, solver=solver)
            costs[:, c] = [_period_cost(m, dd, t) for t in m.T]
        except InfeasibleError:
            if single is None:
                single = (dso.build_dso_model(dd, 1), highs_solver())
            costs[:, c] = [
                _single_cost(single, dd, inp.at(t), closed, limits) for t in range(inp.n_periods)
            ]
    return costs


def _single_cost(single, dd: DSOData, inp: _Inputs, closed: Closed, limits: MipLimits) -> float:
    m, solver = single
    _set_inputs(m, dd, inp)
    dso.set_topology(m, closed)
    try:
        _solve(m, dd, _describe(dd, inp, "fixed topology "), limits, solver=solver)
    except InfeasibleError:
        return np.inf
    return _period_cost(m, dd, 0)


def schedule_topologies(
    costs: np.ndarray,
    actions: np.ndarray,
    initial_actions: np.ndarray,
    budget: int,
    switch_cost: float,
) -> tuple[list[int], float]:
    """Candidate per period minimising sum of ``costs[t, c_t]`` + ``switch_cost`` x actions,
    with at most ``budget`` actions in total (``initial_actions[c]``: from the current
    topology to candidate c; ``actions[a, b]``: from candidate a to b).

    Dynamic programme over (period, candidate, actions used), exact within the candidates.
    Raises :class:`InfeasibleError` when every schedule has infinite cost or breaks the budget.
    """
    costs = np.asarray(costs, dtype=float)
    actions, first = np.asarray(actions, dtype=int), np.asarray(initial_actions, dtype=int)
    n_t, n_c = costs.shape
    budget = int(budget)
    value = np.full((n_c, budget + 1), np.inf)
    back = np.full((n_t, n_c, budget + 1, 2), -1, dtype=int)
    for c in range(n_c):
        if first[c] <= budget:
            value[c, first[c]] = switch_cost * first[c] + costs[0, c]
    for t in range(1, n_t):
        value = _dp_step(value, costs[t], actions, switch_cost, back[t])
    if not np.isfinite(value).any():
        raise InfeasibleError(
            "topology schedule",
            f"no candidate sequence over {n_t} periods has finite cost "
            f"within {budget} switching actions",
        )
    c, k = np.unravel_index(int(np.argmin(value)), value.shape)
    total = float(value[c, k])
    path = [int(c)]
    for t in range(n_t - 1, 0, -1):
        c, k = back[t, c, k]
        path.append(int(c))
    return path[::-1], total


def _dp_step(
    value: np.ndarray,
    cost_t: np.ndarray,
    actions: np.ndarray,
    switch_cost: float,
    back_t: np.ndarray,
) -> np.ndarray:
    """One period of the dynamic programme; fills ``back_t[c, k]`` = (previous c, previous k)."""
    n_c, n_k = value.shape
    new = np.full_like(value, np.inf)
    for a, k in zip(*np.nonzero(np.isfinite(value)), strict=True):
        for b in range(n_c):
            k2 = k + actions[a, b]
            if k2 >= n_k:
                continue
            v = value[a, k] + switch_cost * actions[a, b] + cost_t[b]
            if v < new[b, k2]:
                new[b, k2] = v
                back_t[b, k2] = (a, k)
    return new


def evaluate_schedule(
    dd: DSOData,
    closed: Sequence[Closed],
    load_scale: np.ndarray,
    pm_mw: dict[str, np.ndarray] | None,
    pv_mw: dict[str, np.ndarray] | None,
    initial: Closed,
    mg_q_mvar: dict[str, np.ndarray] | None = None,
    limits: MipLimits = RECONFIG_LIMITS,
) -> ReconfigResult:
    """Fixed-topology LP of a given per-period topology; objective includes switching cost."""
    inp = _inputs(dd, load_scale, pm_mw, pv_mw, mg_q_mvar)
    m = _model(dd, inp)
    dso.set_topology(m, {line: [c[line] for c in closed] for line in closed[0]})
    solved = _solve(m, dd, _describe(dd, inp, "fixed topology schedule "), limits)
    objective = solved.record.objective + dd.switch_cost * path_actions(initial, closed)
    return _result(m, dd, solved, list(closed), initial, None, objective)


def plan_by_candidates(
    dd: DSOData,
    load_scale: np.ndarray,
    pm_mw: dict[str, np.ndarray] | None,
    pv_mw: dict[str, np.ndarray] | None,
    initial: Closed,
    budget: int,
    candidates: Sequence[Closed] | None = None,
    mg_q_mvar: dict[str, np.ndarray] | None = None,
    limits: MipLimits = RECONFIG_LIMITS,
) -> ReconfigResult:
    """Time decomposition: candidates (given, e.g. cached, or computed with ``reach`` 2, 4,
    ... up to ``budget`` from ``initial``), their period costs and the switching schedule of
    :func:`schedule_topologies`, checked by one LP.

    ``solve_time_s`` covers the whole chain; ``status`` is ``optimal_within_candidates``.
    """
    start = time.perf_counter()
    args = (load_scale, pm_mw, pv_mw, mg_q_mvar)
    if candidates is None:
        reach = range(2, min(budget, len(dd.branches)) + 1, 2)  # a tie swap is 2 actions
        candidates = candidate_topologies(dd, *args, initial=initial, reach=reach, limits=limits)
    costs = period_costs(dd, candidates, *args, limits=limits)
    first = np.array([switch_actions(initial, c) for c in candidates])
    path, _ = schedule_topologies(costs, action_matrix(candidates), first, budget, dd.switch_cost)
    schedule = [candidates[c] for c in path]
    res = evaluate_schedule(dd, schedule, load_scale, pm_mw, pv_mw, initial, mg_q_mvar, limits)
    return dataclasses.replace(
        res, status="optimal_within_candidates", solve_time_s=time.perf_counter() - start
    )
