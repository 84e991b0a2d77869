"""Worst-case subproblem and column-and-constraint generation (C&CG) for MESS pre-positioning.

``min_x c'x + max_u min_y Q(x, u)`` (the model of :mod:`controllers.robust`).

Worst case ``max_u Q(x, u)`` by strong duality of the recourse LP (complete recourse):
``max_{u, lam} b(x)'lam + sum dev u mu`` subject to ``A'lam = c`` and each row's multiplier
sign, mu = -lam >= 0 the multiplier of the PV row ``p <= forecast - dev u`` (variable
bounds are rows too). The dual is built mechanically from the recourse model's linear form
(:mod:`controllers.robust_dual`), so the two cannot disagree; b(x) is re-evaluated per first
stage. u is binary: with an integer Gamma the budgeted box's vertices are binary and Q(x, .)
is convex in u, so the MILP is exact. w = u mu is linearised by ``w <= mu``, ``w <= M u``; M
starts at ``DUAL_BOUND_FACTOR`` times the highest shed cost of a period and doubles while
it binds and moves the value. M is not a proven bound, so the worst case found is re-solved
as an LP (:class:`~controllers.robust.Recourse`).

C&CG: (1) master, the first stage with ``eta >= Q(x, u_l)`` for every realisation found so
far (own recourse columns each), starting with the forecast; its bound (solved to ``gap /
10``) is LB; (2) the worst case of its x gives UB = c'x + max_u Q(x, u) (the MILP's bound),
best x kept; (3) stop at ``(UB - LB) / |UB| <= gap``, else add the worst u. Only optimal
solves are used (else the named errors of :mod:`controllers.errors`); ``max_iterations``
above the gap raises :class:`~controllers.errors.NotConvergedError`.

:func:`compare` gives the seed's four rows (robust / deterministic, with / without MESS),
each placement evaluated on its own worst case and on the others'.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from mgcosim.controllers.errors import NotConvergedError, OptimisationError
from mgcosim.controllers.robust import Recourse, RecourseResult, first_stage_from
from mgcosim.controllers.robust_data import FirstStage, RobustCase, pv_realisation
from mgcosim.controllers.robust_dual import build_worst_case_model, default_dual_bound, linear_form
from mgcosim.controllers.robust_model import (
    add_scenario,
    build_master_model,
    build_recourse_model,
    set_first_stage,
    set_pv_avail,
)
from mgcosim.controllers.solve import MipLimits, persistent_highs, solve_optimal

DEFAULT_GAP = 1e-3
NODE_LIMIT = 20_000  # branch-and-bound nodes per master or worst-case MILP (deterministic)
MAX_DUAL_BOUND_DOUBLINGS = 6  # of M (robust_dual.DUAL_BOUND_FACTOR) while it binds


# --- the worst-case subproblem -----------------------------------------------------------
@dataclass(frozen=True)
class WorstCaseResult:
    """The worst PV realisation for one first stage."""

    u: dict[str, np.ndarray]  # deviation indicators per PV unit and period (0/1)
    pv_mw: dict[str, np.ndarray]
    value_cny: float  # worst-case recourse cost (incumbent)
    bound_cny: float  # the MILP's upper bound on it
    big_m: float  # final M of w <= M u
    solve_time_s: float


class WorstCase:
    """The C&CG subproblem max_u Q(x, u) for given first stages (persistent HiGHS)."""

    def __init__(self, case: RobustCase, big_m: float | None = None) -> None:
        self.case = case
        self.recourse = build_recourse_model(case)
        set_pv_avail(self.recourse.rec, case.pv_forecast_mw)  # the PV row's b at u = 0
        self.form = linear_form(self.recourse.rec, self.recourse.rec.cost)
        self.model = build_worst_case_model(case, self.form, big_m or default_dual_bound(case))
        self.solver = persistent_highs()

    def solve(
        self, fs: FirstStage, node_limit: int = NODE_LIMIT, rel_gap: float = 1e-7
    ) -> WorstCaseResult:
        d, case = self.model, self.case
        set_first_stage(self.recourse, fs)
        for i, rhs in enumerate(self.form.rhs):
            d.b[i] = pyo.value(rhs)
        start = time.perf_counter()
        previous = None
        for _ in range(MAX_DUAL_BOUND_DOUBLINGS + 1):
            rec = solve_optimal(d, self.solver, "MESS worst case", MipLimits(rel_gap, node_limit))
            value, bound = rec.objective, rec.bound
            if not self._bound_active():
                break
            # mu may sit at M without cutting anything (with PV down to 0, p <= 0 and p >= 0
            # are parallel rows and their multipliers can grow together at no cost): a
            # doubled M that leaves the value unchanged shows the bound does not bind.
            if previous is not None and value <= previous + 10 * rel_gap * abs(previous) + 1e-6:
                break
            previous = value
            d.big_m = 2 * pyo.value(d.big_m)
        else:
            raise OptimisationError("MESS worst case", "dual bound M still binding")
        u = {k: np.array([round(pyo.value(d.u[k, t])) for t in d.T], float) for k in d.PV}
        return WorstCaseResult(
            u=u,
            pv_mw=pv_realisation(case, u),
            value_cny=value,
            bound_cny=bound,
            big_m=float(pyo.value(d.big_m)),
            solve_time_s=time.perf_counter() - start,
        )

    def _bound_active(self) -> bool:
        d, rows = self.model, self.form.rows_of
        big_m = pyo.value(d.big_m)
        return any(
            pyo.value(d.u[k, t]) > 0.5 and -pyo.value(d.lam[row]) >= big_m * (1 - 1e-6)
            for (k, t), row in rows.items()
        )


# --- column-and-constraint generation ------------------------------------------------------
class WorstCaseTotal:
    """``total_cny`` of a result with a ``first_stage`` and its ``worst_case``."""

    @property
    def total_cny(self) -> float:
        """First-stage cost plus the worst-case recourse cost (the incumbent)."""
        return self.first_stage.cost_cny + self.worst_case.value_cny


@dataclass(frozen=True)
class Iteration:
    """Bounds after one master and one subproblem solve."""

    iteration: int
    lower_bound_cny: float
    upper_bound_cny: float
    gap: float
    mess_buses: tuple[int, ...]  # the master's placement
    worst_u: dict[str, tuple[int, ...]]  # the subproblem's PV deviations for it
    master_time_s: float
    subproblem_time_s: float


@dataclass(frozen=True)
class RobustResult(WorstCaseTotal):
    """Robust placement: first stage, its worst case (checked) and the C&CG trace."""

    first_stage: FirstStage
    worst_case: WorstCaseResult
    check: RecourseResult  # the recourse re-solved with the worst PV fixed
    lower_bound_cny: float
    upper_bound_cny: float
    gap: float
    iterations: tuple[Iteration, ...]
    time_s: float


@dataclass(frozen=True)
class Models:
    """The subproblem and recourse models of a case: built once, reused (fleet-independent)."""

    worst_case: WorstCase
    recourse: Recourse

    @classmethod
    def of(cls, case: RobustCase) -> Models:
        return cls(WorstCase(case), Recourse(case))


def solve_master(
    master, case: RobustCase, node_limit: int, rel_gap: float
) -> tuple[float, FirstStage]:
    """Solve the master; return its lower bound and the first stage."""
    rec = solve_optimal(master, persistent_highs(), "MESS master", MipLimits(rel_gap, node_limit))
    return rec.bound, first_stage_from(master, case)


def solve_robust(
    case: RobustCase,
    *,
    gap: float = DEFAULT_GAP,
    max_iterations: int = 20,
    node_limit: int = NODE_LIMIT,
    models: Models | None = None,
) -> RobustResult:
    """C&CG down to the relative ``gap``; raises NotConvergedError after max_iterations."""
    start = time.perf_counter()
    models = models or Models.of(case)
    master = build_master_model(case, [case.pv_forecast_mw])
    lower, upper = -np.inf, np.inf
    best: tuple[FirstStage, WorstCaseResult] | None = None
    trace: list[Iteration] = []
    for k in range(1, max_iterations + 1):
        t0 = time.perf_counter()
        bound, fs = solve_master(master, case, node_limit, gap / 10)
        t1 = time.perf_counter()
        lower = max(lower, bound)
        worst = models.worst_case.solve(fs, node_limit)
        if fs.cost_cny + worst.bound_cny < upper:
            upper = fs.cost_cny + worst.bound_cny
            best = (fs, worst)
        rel = (upper - lower) / max(abs(upper), 1e-9)
        worst_u = {n: tuple(int(x) for x in v) for n, v in worst.u.items()}
        times = (t1 - t0, time.perf_counter() - t1)
        trace.append(Iteration(k, lower, upper, rel, tuple(sorted(fs.mess_buses)), worst_u, *times))
        if rel <= gap:
            break
        add_scenario(master, case, worst.pv_mw)
    else:
        raise NotConvergedError(
            f"C&CG: gap {rel:.2e} > {gap:.2e} after {max_iterations} iterations "
            f"(LB {lower:.2f}, UB {upper:.2f} CNY)"
        )
    assert best is not None
    fs, worst = best
    return RobustResult(
        first_stage=fs,
        worst_case=worst,
        check=models.recourse.solve(fs, worst.pv_mw),
        lower_bound_cny=lower,
        upper_bound_cny=upper,
        gap=rel,
        iterations=tuple(trace),
        time_s=time.perf_counter() - start,
    )


@dataclass(frozen=True)
class DeterministicResult(WorstCaseTotal):
    """Placement for the PV forecast, then evaluated on its worst case."""

    first_stage: FirstStage
    forecast: RecourseResult  # its planned recourse (PV at the forecast)
    worst_case: WorstCaseResult
    check: RecourseResult
    time_s: float


def solve_deterministic(
    case: RobustCase,
    *,
    gap: float = DEFAULT_GAP,
    node_limit: int = NODE_LIMIT,
    models: Models | None = None,
) -> DeterministicResult:
    """The same model with the PV at its forecast (no uncertainty)."""
    start = time.perf_counter()
    models = models or Models.of(case)
    master = build_master_model(case, [case.pv_forecast_mw])
    _, fs = solve_master(master, case, node_limit, gap / 10)
    worst = models.worst_case.solve(fs, node_limit)
    return DeterministicResult(
        first_stage=fs,
        forecast=models.recourse.solve(fs, case.pv_forecast_mw),
        worst_case=worst,
        check=models.recourse.solve(fs, worst.pv_mw),
        time_s=time.perf_counter() - start,
    )


# --- the seed's comparison -----------------------------------------------------------------
@dataclass(frozen=True)
class ComparisonRow(WorstCaseTotal):
    """One of the seed's four rows."""

    label: str
    robust: bool
    fleet_size_units: int
    first_stage: FirstStage
    worst_case: WorstCaseResult
    worst_case_check: RecourseResult
    forecast_recourse_cny: float
    iterations: int  # C&CG iterations (1 for deterministic)
    time_s: float


@dataclass(frozen=True)
class Comparison:
    rows: tuple[ComparisonRow, ...]
    robust: RobustResult  # with MESS: bounds per iteration
    robust_no_mess: RobustResult
    # cross[a][b]: total cost of row a's first stage on row b's worst-case PV
    cross_cny: dict[str, dict[str, float]]


def compare(
    case: RobustCase,
    *,
    gap: float = DEFAULT_GAP,
    max_iterations: int = 20,
    node_limit: int = NODE_LIMIT,
) -> Comparison:
    """Robust and deterministic placement, with the case's fleet and with none."""
    models = Models.of(case)
    no_mess = dataclasses.replace(case, mess=dataclasses.replace(case.mess, fleet_size_units=0))
    fleets = (("with", case), ("without", no_mess))
    rows: list[ComparisonRow] = []
    robust: dict[str, RobustResult] = {}

    def row(label: str, fleet_case: RobustCase, r, forecast_cny: float, iterations: int):
        figures = (r.first_stage, r.worst_case, r.check, forecast_cny, iterations, r.time_s)
        fleet = fleet_case.mess.fleet_size_units
        rows.append(ComparisonRow(label, label.startswith("robust"), fleet, *figures))

    for mess, fleet_case in fleets:
        limits = {"gap": gap, "max_iterations": max_iterations, "node_limit": node_limit}
        r = robust[mess] = solve_robust(fleet_case, **limits, models=models)
        forecast = models.recourse.solve(r.first_stage, case.pv_forecast_mw).cost_cny
        row(f"robust, {mess} MESS", fleet_case, r, forecast, len(r.iterations))
    for mess, fleet_case in fleets:
        d = solve_deterministic(fleet_case, gap=gap, node_limit=node_limit, models=models)
        row(f"deterministic, {mess} MESS", fleet_case, d, d.forecast.cost_cny, 1)
    cross = {
        a.label: {
            b.label: a.first_stage.cost_cny
            + models.recourse.solve(a.first_stage, b.worst_case.pv_mw).cost_cny
            for b in rows
        }
        for a in rows
    }
    return Comparison(tuple(rows), robust["with"], robust["without"], cross)


# --- text and JSON -------------------------------------------------------------------------
def format_iterations(result: RobustResult) -> str:
    """C&CG bounds per iteration (gaps below 0 are rounding, shown as 0)."""
    lines = [
        f"  {'it':>3s} {'lower CNY':>10s} {'upper CNY':>10s} {'gap':>8s} "
        f"{'master s':>8s} {'sub s':>6s}  master's MESS buses / its worst PV (1: unit down)"
    ]
    for it in result.iterations:
        down = " ".join(f"{k}:{''.join(str(x) for x in v)}" for k, v in it.worst_u.items())
        lines.append(
            f"  {it.iteration:3d} {it.lower_bound_cny:10.2f} {it.upper_bound_cny:10.2f} "
            f"{max(it.gap, 0.0):8.1e} {it.master_time_s:8.2f} {it.subproblem_time_s:6.2f}  "
            f"[{', '.join(map(str, it.mess_buses)) or '-'}] / {down}"
        )
    lines.append(
        f"  converged in {len(result.iterations)} iterations, {result.time_s:.2f} s; "
        f"worst case re-solved with its PV fixed: {result.check.cost_cny:.2f} CNY "
        f"(subproblem {result.worst_case.value_cny:.2f})"
    )
    return "\n".join(lines)


def format_table(comparison: Comparison) -> str:
    """The seed's four rows, then every first stage on every row's worst case."""
    lines = [
        f"  {'case':28s} {'MESS buses':12s} {'MESS CNY':>8s} {'switch':>6s} "
        f"{'worst 2nd':>9s} {'total CNY':>9s} {'worst shed MWh T1/T2/T3':>23s} "
        f"{'forecast 2nd':>12s} {'it':>2s} {'time s':>6s}"
    ]
    for r in comparison.rows:
        fs, shed = r.first_stage, r.worst_case_check.shed_mwh_by_tier
        tiers = "/".join(f"{shed[t]:.2f}" for t in sorted(shed))
        buses = ", ".join(str(b) for b in sorted(fs.mess_buses)) or "none"
        lines.append(
            f"  {r.label:28s} {buses:12s} {fs.placement_cost_cny:8.1f} "
            f"{fs.switch_cost_cny:6.1f} {r.worst_case.value_cny:9.1f} {r.total_cny:9.1f} "
            f"{tiers:>23s} {r.forecast_recourse_cny:12.1f} {r.iterations:2d} {r.time_s:6.2f}"
        )
    lines.append(
        "  CNY; 2nd = second stage (load shedding + MESS throughput) on the worst-case PV\n"
        "  of that first stage, or on the forecast; total = MESS + switch + worst 2nd"
    )
    labels = [r.label for r in comparison.rows]
    lines.append("  total CNY of each first stage (rows) on each row's worst-case PV (columns):")
    lines.append(f"  {'':31s}" + "".join(f" {i + 1:>9d}" for i in range(len(labels))))
    for i, a in enumerate(labels):
        cells = "".join(f" {comparison.cross_cny[a][b]:9.1f}" for b in labels)
        lines.append(f"  {i + 1}. {a:28s}{cells}")
    return "\n".join(lines)


def first_stage_dict(fs: FirstStage) -> dict:
    """The first stage's fields, sets as sorted lists."""
    return {
        k: sorted(v) if isinstance(v, frozenset) else v for k, v in dataclasses.asdict(fs).items()
    }


def comparison_dict(comparison: Comparison) -> dict:
    """Plain JSON-ready figures of a comparison."""

    def iterations(r: RobustResult) -> list[dict]:
        return [
            dataclasses.asdict(it) | {"worst_u": {k: list(v) for k, v in it.worst_u.items()}}
            for it in r.iterations
        ]

    return {
        "rows": [
            {
                "label": r.label,
                "robust": r.robust,
                "fleet_size_units": r.fleet_size_units,
                "first_stage": first_stage_dict(r.first_stage),
                "worst_case_u": {k: v.tolist() for k, v in r.worst_case.u.items()},
                "worst_case_recourse_cny": r.worst_case.value_cny,
                "worst_case_recheck_cny": r.worst_case_check.cost_cny,
                "worst_case_shed_mwh_by_tier": r.worst_case_check.shed_mwh_by_tier,
                "forecast_recourse_cny": r.forecast_recourse_cny,
                "total_cny": r.total_cny,
                "iterations": r.iterations,
                "time_s": r.time_s,
            }
            for r in comparison.rows
        ],
        "ccg": {
            "with_mess": iterations(comparison.robust),
            "without_mess": iterations(comparison.robust_no_mess),
        },
        "cross_cny": comparison.cross_cny,
    }
